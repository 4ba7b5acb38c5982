// Proves the config is checked at start-up: the defaults (and the tests' own config) validate; every
// rule of validateConfig refuses a bad value with an error that names the key, the value and what
// it must be, while the value at the rule's edge is accepted; and loadConfig layers its sources as
// documented: defaults < JSON file < TXE_* environment < command-line flags, ack=durable where sinks
// are set unless a source chose ack. Pure: no servers, a temporary file for the file source.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, loadConfig, validateConfig } from '../../engine/config.js';
import { testConfig } from '../support/fixtures.js';

const KEY = 'ab'.repeat(32); // a well-formed 32-byte hex public key
const TIMER_MS_MAX = 2 ** 31 - 1;

/** The error validateConfig throws for `raw` (fails the test when it accepts it). */
function refusal(raw: Record<string, unknown>): string {
  try {
    validateConfig(raw);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`validateConfig accepted ${JSON.stringify(raw)}`);
}

function configFile(contents: Record<string, unknown>): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'txe-config-')), 'config.json');
  writeFileSync(file, JSON.stringify(contents));
  return file;
}

describe('validateConfig: defaults', () => {
  it('accepts the defaults as they are, and an empty config means the defaults', () => {
    expect(validateConfig({ ...defaultConfig() })).toEqual(defaultConfig());
    expect(validateConfig({})).toEqual(defaultConfig());
  });

  it('accepts the config the integration tests start engines with', () => {
    const config = testConfig();
    expect(validateConfig({ ...config })).toEqual(config);
  });
});

// Each row: what is wrong, the raw config, and what the error must say.
const REFUSED: [string, Record<string, unknown>, RegExp][] = [
  ['an unknown key', { colour: 'red' }, /unknown config keys: colour/],
  ['a key renamed to end in Max', { ringSlots: 1024, historyBlocks: 8 }, /renamed config keys: ringSlots is now ringSlotsMax, historyBlocks is now historyBlocksMax/],
  ['a boolean that is not one', { webhooks: 'yes' }, /config webhooks must be true or false, got yes/],
  ['a number that is not an integer', { workers: 1.5 }, /config workers must be a non-negative integer, got 1.5/],
  ['a negative number', { subscribersMax: -1 }, /config subscribersMax must be a non-negative integer, got -1/],
  ['a number given as words', { grpcPort: 'eighty' }, /config grpcPort must be a non-negative integer, got eighty/],
  ['a list that is not one', { issuers: 5 }, /config issuers must be a list/],
  ['a string that is not one', { grpcHost: 5 }, /config grpcHost must be a string/],
  ['ringSlotsMax not a power of two', { ringSlotsMax: 1000 }, /config ringSlotsMax must be a power of two >= 2, got 1000/],
  ['batchesInFlightMax not a power of two', { batchesInFlightMax: 100 }, /config batchesInFlightMax must be a power of two >= 2, got 100/],
  ['blockRingSlotsMax not a power of two', { blockRingSlotsMax: 1 }, /config blockRingSlotsMax must be a power of two >= 2, got 1/],
  ['historyEntriesMax not a power of two', { historyEntriesMax: 3000 }, /config historyEntriesMax must be a power of two >= 2, got 3000/],
  ['a limit of zero', { subscribersMax: 0 }, /config subscribersMax must be at least 1, got 0/],
  ['no room for an account past the issuers', { accountsMax: 1, issuers: [KEY] }, /config accountsMax \(1\) must exceed the number of issuers \(1\)/],
  // ringSlotsMax 1024 keeps 64 slots for approval decisions: a batch may take 960.
  ['a batch larger than the ring leaves clients', { ringSlotsMax: 1024, batchTxsMax: 961 }, /config batchTxsMax must be in \[1, 960\] \(ringSlotsMax 1024 less 64 kept for approval decisions\), got 961/],
  ['too many workers', { workers: 257 }, /config workers must be in \[1, 256\], got 257/],
  ['a nice value past 19', { verifyWorkerNice: 20 }, /config verifyWorkerNice must be in \[0, 19\] \(a nice value; 0 leaves the workers as they start\), got 20/],
  ['a negative nice value (raising priority needs privileges)', { verifyWorkerNice: -1 }, /config verifyWorkerNice must be a non-negative integer, got -1/],
  ['too many PostgreSQL write sessions', { pgWriteConnectionsMax: 17 }, /config pgWriteConnectionsMax must be at most 16 \(each is a PostgreSQL backend\), got 17/],
  ['no PostgreSQL write session', { pgWriteConnectionsMax: 0 }, /config pgWriteConnectionsMax must be at least 1, got 0/],
  ['a gRPC port out of range', { grpcPort: 65536 }, /config grpcPort must be a TCP port in \[0, 65535\], got 65536/],
  ['a metrics port out of range', { metricsPort: 70000 }, /config metricsPort must be a TCP port in \[0, 65535\], got 70000/],
  ['an unknown ack mode', { ack: 'fast' }, /config ack must be ordered or durable, got fast/],
  ['an unknown sink', { sinks: ['redis'] }, /config sinks: unknown sink redis; use pg or pg,kafka/],
  ['kafka without pg', { sinks: ['kafka'] }, /config sinks: kafka needs pg too/],
  ['a webhook topic prefix with a space', { webhookTopicPrefix: 'my hooks' }, /config webhookTopicPrefix must be a Kafka topic name prefix \(letters, digits, \. _ -\), got my hooks/],
  ['a webhook topic prefix equal to the blocks topic', { webhookTopicPrefix: 'txe.blocks' }, /config webhookTopicPrefix must be a Kafka topic name prefix/],
  ['an issuer that is not a key', { issuers: ['abc'] }, /config issuers: abc is not a 32-byte hex public key/],
  ['a trusted signer that is not a key', { trustedSigners: [KEY.slice(2)] }, /config trustedSigners: .* is not a 32-byte hex public key/],
  ['a bad approval policy', { approvalPolicies: [{ name: 'p' }] }, /config approvalPolicies\[0\] \(p\)/],
  ['approval policies that are no list', { approvalPolicies: '{}' }, /config approvalPolicies must be a list of policies/],
  ['a delay longer than a Node timer', { shutdownGraceMs: TIMER_MS_MAX + 1 }, /config shutdownGraceMs must be at most 2147483647 ms \(the longest Node timer\), got 2147483648/],
  ['a maximum delay longer than a Node timer', { webhookRetryPauseMsMax: TIMER_MS_MAX + 1 }, /config webhookRetryPauseMsMax must be at most 2147483647 ms/],
  ['an HTTP/2 frame below the protocol minimum', { grpcFrameBytesMax: 16_383 }, /config grpcFrameBytesMax must be in \[16384, 16777215\] \(HTTP\/2 frame sizes\), got 16383/],
  ['an HTTP/2 frame above the protocol maximum', { grpcFrameBytesMax: 16_777_216 }, /config grpcFrameBytesMax must be in \[16384, 16777215\]/],
  ['more concurrent streams than HTTP/2 can say', { grpcConcurrentStreamsMax: 2 ** 31 }, /config grpcConcurrentStreamsMax must be at most 2147483647, got 2147483648/],
  // 129 × 8190 = 1,056,510 rows > 2^20.
  ['recovery reading too many rows at once', { storedBlocksPerQueryMax: 129 }, /config storedBlocksPerQueryMax × batchTxsMax \(129 × 8190\) must be at most 1048576 rows/],
  ['a backoff cap below the first backoff', { webhookBackoffMs: 5000, webhookBackoffMaxMs: 4999 }, /config webhookBackoffMaxMs \(4999\) must be at least webhookBackoffMs \(5000\)/],
  ['a POST longer than the consumer session allows', { webhookTimeoutMs: 12_001 }, /config webhookTimeoutMs must be at most 12000 \(80% of webhookConsumerSessionTimeoutMs 15000: a POST must end before the consumer's session does\), got 12001/],
  ['a heartbeat slower than a third of the session', { webhookConsumerHeartbeatIntervalMs: 5001 }, /config webhookConsumerHeartbeatIntervalMs \(5001\) must be at most a third of webhookConsumerSessionTimeoutMs \(15000\)/],
  ['a backpressure wait shorter than one poll', { webhookBackpressureWaitMsMax: 49 }, /config webhookBackpressureWaitMsMax \(49\) must be at least webhookBackpressurePollMs \(50\)/],
  ['a delivery log INSERT over PostgreSQL\'s parameters', { webhookLogRowsPerFlushMax: 5958 }, /config webhookLogRowsPerFlushMax must be at most 5957 \(PostgreSQL takes 65535 parameters a statement, 11 a row\), got 5958/],
];

describe('validateConfig: every rule refuses with a clear error', () => {
  it.each(REFUSED)('refuses %s', (_, raw, message) => {
    expect(refusal(raw)).toMatch(message);
  });
});

// The values at each rule's edge, which must pass: a rule off by one fails here or above.
const ACCEPTED: [string, Record<string, unknown>][] = [
  ['zero ports (pick a free one) and zero for "never"', { grpcPort: 0, metricsPort: 0, invariantCheckEveryBlocks: 0, snapshotEveryBlocks: 0 }],
  ['the largest port', { grpcPort: 65535, metricsPort: 65535 }],
  ['one PostgreSQL write session', { pgWriteConnectionsMax: 1 }],
  ['the most PostgreSQL write sessions', { pgWriteConnectionsMax: 16 }],
  ['one account past the issuers', { accountsMax: 2, issuers: [KEY] }],
  ['the largest batch the ring leaves clients', { ringSlotsMax: 1024, batchTxsMax: 960 }],
  ['256 workers', { workers: 256 }],
  ['the longest Node timer', { shutdownGraceMs: TIMER_MS_MAX }],
  ['the HTTP/2 frame size range', { grpcFrameBytesMax: 16_384 }],
  ['recovery reading exactly 2^20 rows', { storedBlocksPerQueryMax: 128, batchTxsMax: 8192 }],
  ['a POST of 80% of the session', { webhookTimeoutMs: 12_000 }],
  ['a longer session for longer POSTs', { webhookConsumerSessionTimeoutMs: 30_000, webhookTimeoutMs: 24_000 }],
  ['a heartbeat of a third of the session', { webhookConsumerHeartbeatIntervalMs: 5000 }],
  ['a backpressure wait of one poll', { webhookBackpressureWaitMsMax: 50 }],
  ['the largest delivery log INSERT', { webhookLogRowsPerFlushMax: 5957 }],
  ['numbers, booleans and lists as strings (the environment\'s form)', { workers: '4', webhooks: 'false', sinks: 'pg, kafka', issuers: `${KEY},${KEY.toUpperCase()}` }],
];

describe('validateConfig: the edge of each rule is allowed', () => {
  it.each(ACCEPTED)('accepts %s', (_, raw) => {
    expect(() => validateConfig(raw)).not.toThrow();
  });

  it('turns strings into the types of the defaults', () => {
    const c = validateConfig({ workers: '4', webhooks: 'false', sinks: 'pg, kafka' });
    expect(c).toMatchObject({ workers: 4, webhooks: false, sinks: ['pg', 'kafka'] });
  });
});

describe('loadConfig: defaults < file < environment < flags', () => {
  it('gives the defaults when no source says anything', () => {
    expect(loadConfig({}, undefined, {})).toEqual(defaultConfig());
  });

  it('takes the file over the defaults, the environment over the file, the flags over the environment', () => {
    const file = configFile({ grpcPort: 1111, metricsPort: 1112, workers: 3 });
    expect(loadConfig({}, file, {})).toMatchObject({ grpcPort: 1111, metricsPort: 1112, workers: 3, subscribersMax: defaultConfig().subscribersMax });
    const env = { TXE_GRPC_PORT: '2222', TXE_METRICS_PORT: '2223' };
    expect(loadConfig({}, file, env)).toMatchObject({ grpcPort: 2222, metricsPort: 2223, workers: 3 });
    // A flag left undefined does not hide the sources below it.
    expect(loadConfig({ grpcPort: 3333, metricsPort: undefined }, file, env)).toMatchObject({ grpcPort: 3333, metricsPort: 2223, workers: 3 });
  });

  it('reads only the documented TXE_* variables, with lists split at commas', () => {
    const env = { TXE_SINKS: 'pg,kafka', TXE_ISSUERS: `${KEY},${'cd'.repeat(32)}`, TXE_KAFKA_BROKERS: 'a:1, b:2', TXE_RING_SLOTS: '3', RING_SLOTS: '3' };
    const c = loadConfig({}, undefined, env);
    expect(c).toMatchObject({ sinks: ['pg', 'kafka'], issuers: [KEY, 'cd'.repeat(32)], kafkaBrokers: ['a:1', 'b:2'] });
    expect(c.ringSlotsMax).toBe(defaultConfig().ringSlotsMax); // TXE_RING_SLOTS is no source: the file or a flag sets it
  });

  it('refuses a bad value from any source, naming the key', () => {
    expect(() => loadConfig({}, undefined, { TXE_GRPC_PORT: 'abc' })).toThrow(/config grpcPort must be a non-negative integer, got abc/);
    expect(() => loadConfig({}, configFile({ ringSlotsMax: 1000 }), {})).toThrow(/config ringSlotsMax must be a power of two/);
    expect(() => loadConfig({}, configFile({ ringslots: 1024 }), {})).toThrow(/unknown config keys: ringslots/);
    expect(() => loadConfig({ ack: 'fast' }, undefined, {})).toThrow(/config ack must be ordered or durable, got fast/);
  });

  it('makes ack durable where sinks are set, unless the file, the environment or a flag chose ack', () => {
    expect(loadConfig({}, undefined, { TXE_SINKS: 'pg' }).ack).toBe('durable');
    expect(loadConfig({}, configFile({ sinks: ['pg'] }), {}).ack).toBe('durable');
    expect(loadConfig({}, configFile({ sinks: ['pg'], ack: 'ordered' }), {}).ack).toBe('ordered');
    expect(loadConfig({}, undefined, { TXE_SINKS: 'pg', TXE_ACK: 'ordered' }).ack).toBe('ordered');
    expect(loadConfig({ ack: 'ordered', sinks: ['pg'] }, undefined, {}).ack).toBe('ordered');
    expect(loadConfig({}, undefined, {}).ack).toBe('ordered'); // no sinks: nothing durable to wait for
  });
});
