// A read_uncommitted consumer that sees its topic's transaction markers
// (engine/stages/commit/kafka/transaction-markers.ts), against the real broker: a transaction's
// records arrive while it is still open, and its COMMIT or ABORT marker arrives afterwards, alone in
// its fetch, which kafkajs by itself never hands to eachBatch.
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers } from '../../support/servers.js';
import { cleanUp, withTimeout } from '../../support/async.js';
import { installTransactionMarkers, logEntries, type LogEntry } from '../../../engine/stages/commit/kafka/transaction-markers.js';

const { Kafka, logLevel } = kafkajs;
const WAIT_MS = 30_000;

describe('transaction markers on a read_uncommitted consumer (kafkajs)', () => {
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const topic = `txe-test-markers-${suffix}`;
  const kafka = new Kafka({ clientId: `txe-test-markers-${suffix}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING, connectionTimeout: 5_000, requestTimeout: 10_000 });
  const admin = kafka.admin();
  const producer = kafka.producer({ transactionalId: `txe-test-markers-${suffix}`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId: `txe-test-markers-${suffix}`, readUncommitted: true, maxWaitTimeInMs: 100 });
  const seen: LogEntry[] = [];

  beforeAll(async () => {
    expect(installTransactionMarkers(topic)).toBe('installed');
    await withTimeout(admin.connect(), WAIT_MS, 'admin.connect');
    await withTimeout(admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] }), WAIT_MS, 'createTopics');
    await withTimeout(producer.connect(), WAIT_MS, 'producer.connect');
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => { seen.push(...logEntries(batch)); } });
  });

  afterAll(async () => {
    await cleanUp('markers test', [
      ['consumer.disconnect', () => consumer.disconnect()],
      ['producer.disconnect', () => producer.disconnect()],
      ['admin.deleteTopics', () => admin.deleteTopics({ topics: [topic], timeout: 10_000 })],
      ['admin.disconnect', () => admin.disconnect()],
    ]);
  });

  const until = async (what: string, done: () => boolean) => {
    const deadline = Date.now() + WAIT_MS;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`${what}: not seen after ${WAIT_MS} ms; seen ${JSON.stringify(seen.map((e) => e.kind))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it("reads a transaction's records while it is open, then its COMMIT; an aborted one's records, then its ABORT", async () => {
    const committed = await producer.transaction();
    await committed.send({ topic, acks: -1, messages: [{ value: 'a' }, { value: 'b' }] });
    await until('the open transaction\'s records', () => seen.length >= 2);
    expect(seen.map((e) => e.kind)).toEqual(['record', 'record']); // before any commit
    await committed.commit();
    await until('the COMMIT marker', () => seen.length >= 3);

    const aborted = await producer.transaction();
    await aborted.send({ topic, acks: -1, messages: [{ value: 'c' }] });
    await until('the aborted transaction\'s record', () => seen.length >= 4);
    await aborted.abort();
    await until('the ABORT marker', () => seen.length >= 5);

    expect(seen.map((e) => e.kind)).toEqual(['record', 'record', 'commit', 'record', 'abort']);
    const records = seen.filter((e): e is Extract<LogEntry, { kind: 'record' }> => e.kind === 'record');
    expect(records.map((r) => r.value.toString())).toEqual(['a', 'b', 'c']);
    expect(records.every((r) => r.transactional)).toBe(true);
    expect(new Set(seen.map((e) => e.producerId)).size).toBe(1); // one producer wrote both transactions
    const offsets = seen.map((e) => Number(e.offset));
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y)); // log order
  }, 60_000);
});
