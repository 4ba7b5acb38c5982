// Webhook delivery with the real servers: an engine with the pg and kafka sinks, events queued
// through Kafka, and a real local HTTP receiver that checks every signature. Each webhook here is
// filtered to accounts of its own and each test counts only its own events and metric increments,
// so every test passes alone (vitest -t) as well as after the others. "Nothing more arrives" is
// proved with a fence, never a pause: see arrivedBefore.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { Engine } from '../../../engine/engine.js';
import { TxeClient } from '../../../engine/client.js';
import { verifyWebhook } from '../../../engine/services/webhooks/signature.js';
import { Result } from '../../../engine/core/result.js';
import { approver, globalPolicy, mint, signedBatch, testConfig, transfer, user } from '../../support/fixtures.js';
import { dropDatabase, freshDatabase, kafkaBrokers } from '../../support/servers.js';
import { deleteTopic } from '../../support/durable.js';
import { until } from '../../support/async.js';

const EVENT = { committed: 1, rejected: 2, approvalRequested: 3, approvalDecided: 4 };
const ATTEMPTS_MAX = 3;

interface Received { path: string; headers: IncomingHttpHeaders; body: Buffer; atMs: number }
type Answer = { status: number; headers?: Record<string, string> };

let url: string;
let engine: Engine;
let client: TxeClient;
let receiver: Server;
let base: string;
const received: Received[] = [];
const answers = new Map<string, (n: number) => Answer>(); // path -> answer for its n-th request (1-based)
const suffix = Math.random().toString(36).slice(2, 8);
const blocksTopic = `txe.test.webhooks.${suffix}`;
const prefix = `txe.test.wh.${suffix}`;
const nonces = new Map<string, bigint>();

function onPath(path: string): Received[] {
  return received.filter((r) => r.path === path);
}

/** The block of an event, from its id evt_<block>_<position> (header webhook-id, or a log row's event id). */
const blockOf = (eventId: unknown): number => Number(String(eventId).split('_')[1]);
const blockOfRequest = (r: Received): number => blockOf(r.headers['webhook-id']);

/**
 * Waits for the event of block `fence` on `path` and returns the events that arrived for blocks
 * before it. A webhook's events share a partition and the router routes blocks in order, so every
 * event of an earlier block, a duplicate included, is delivered before the fence's: once the
 * fence is in, nothing from before it can still arrive, and the count returned is final.
 */
async function arrivedBefore(path: string, fence: number): Promise<Received[]> {
  await until(`block ${fence}'s event on ${path}`, () => (onPath(path).some((r) => blockOfRequest(r) === fence) ? true : null));
  return onPath(path).filter((r) => blockOfRequest(r) < fence);
}

/** A Prometheus sample of the engine, 0 when it has not been counted yet. */
async function metric(sample: string): Promise<number> {
  const text = await (await fetch(`http://${engine.metrics.address}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}


/** Mints to a fresh account, so each test's events involve accounts of its own. */
let issuerNonce = 0n;
async function fundedAccount(name: string, amount = 1_000_000n) {
  const k = user(`${name}-${suffix}`);
  const r = await client.submitBatch({ ...signedBatch([mint(k.publicKey, ++issuerNonce, amount)]), ack: 'durable' });
  expect(Array.from(r.results)).toEqual([Result.committed]);
  return k;
}

async function send(from: Buffer, to: Buffer, amounts: bigint[]) {
  const key = from.toString('hex');
  const last = nonces.get(key) ?? 0n;
  const records = amounts.map((amount, i) => transfer(from, to, last + 1n + BigInt(i), amount));
  const r = await client.submitBatch({ ...signedBatch(records), ack: 'durable' });
  nonces.set(key, last + BigInt(r.accepted)); // a rejection consumes no nonce (here they come last)
  return r;
}

async function createHook(path: string, eventTypes: number[], accounts: Buffer[]) {
  const r = await client.createWebhook({ url: `${base}${path}`, eventTypes, accounts }) as { webhook: { id: string }; secret: string };
  return { id: r.webhook.id, secret: r.secret };
}

const deliveries = async (webhookId: string) =>
  ((await client.listDeliveries({ webhookId })) as { deliveries: { eventId: string; attempt: number; statusCode: number; outcome: string; attemptedAtMs: unknown; nextAttemptAtMs: unknown }[] }).deliveries;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks), atMs: Date.now() });
      const answer = answers.get(path)?.(onPath(path).length) ?? { status: 200 };
      res.writeHead(answer.status, answer.headers).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  url = await freshDatabase('webhooks');
  engine = await Engine.start(testConfig({
    sinks: ['pg', 'kafka'], pgUrl: url, kafkaTopic: blocksTopic, webhookTopicPrefix: prefix, ack: 'durable',
    webhookAttemptsMax: ATTEMPTS_MAX, webhookBackoffMs: 100, webhookBackoffMaxMs: 5000, webhookTimeoutMs: 2000, approvalSweepMs: 100,
    webhookTargetsAllowed: ['127.0.0.1/32'], // the receiver above; every other local address stays refused
    approvalPolicies: [globalPolicy(500_000n, { approvers: [approver('a')], required: 1 })],
  }));
  client = new TxeClient(engine.address);
  await client.waitReady(5000);
}, 90_000);

afterAll(async () => {
  client?.close();
  await engine?.stop();
  receiver?.close();
  await dropDatabase(url);
  for (const t of [blocksTopic, `${prefix}.events`, `${prefix}.retries`, `${prefix}.dead-letters`]) await deleteTopic(t);
}, 60_000);

describe('WebhookService', () => {
  it('delivers each event exactly once per webhook, in block order, signed, with approvals too', async () => {
    const approvedBefore = await metric('txe_approvals_total{event="approved"}');
    const alice = await fundedAccount('alice');
    const bob = user(`bob-${suffix}`).publicKey;
    const hook = await createHook('/healthy', [EVENT.committed, EVENT.rejected, EVENT.approvalRequested, EVENT.approvalDecided], [alice.publicKey]);
    const second = await createHook('/healthy-2', [EVENT.committed], [bob]);
    for (let i = 0; i < 3; i++) await send(alice.publicKey, bob, [1n, 2n, 3n, 10_000_000n]); // the last is rejected: insufficient funds
    const held = await send(alice.publicKey, bob, [600_000n]);
    expect(Array.from(held.results)).toEqual([Result.pending_approval]);
    const approval = await client.getApproval({ seq: Number(String(held.firstSeq)) });
    await client.approve(approval.id as Buffer, approver('a'));
    // 3 × (3 committed + 1 rejected) + requested + decided
    await until('14 events', () => (onPath('/healthy').length >= 14 ? true : null));
    const fence = (await send(alice.publicKey, bob, [1n])).block; // an event for both webhooks
    const got = await arrivedBefore('/healthy', fence);
    const bobs = await arrivedBefore('/healthy-2', fence);
    expect(got).toHaveLength(14);
    expect(bobs).toHaveLength(9);
    const ids = got.map((r) => verifyWebhook(hook.secret, r.headers, r.body).id);
    expect(new Set(ids).size).toBe(14);
    const order = ids.map((id) => id.split('_').slice(1).map(Number));
    expect(order).toEqual([...order].sort((x, y) => x[0] - y[0] || x[1] - y[1]));
    const types = got.map((r) => JSON.parse(r.body.toString()).type);
    expect(types.filter((t) => t === 'transaction.rejected')).toHaveLength(3);
    expect(types.slice(-2)).toEqual(['approval.requested', 'approval.decided']);
    const decided = JSON.parse(got[13].body.toString());
    expect(decided.data).toMatchObject({ outcome: 'approved', approvalId: (approval.id as Buffer).toString('hex') });
    for (const r of bobs) verifyWebhook(second.secret, r.headers, r.body);
    expect(() => verifyWebhook(hook.secret, bobs[0].headers, bobs[0].body)).toThrow(/signature/);
    // A try's log row is written after its POST: wait for the fence's row, then count the others.
    const log = await until('the fence\'s delivery logged', async () => {
      const rows = await deliveries(hook.id);
      return rows.some((d) => blockOf(d.eventId) === fence) ? rows : null;
    });
    expect(log.filter((d) => d.outcome === 'delivered' && blockOf(d.eventId) < fence)).toHaveLength(14);
    await until('the approval counted', async () => ((await metric('txe_approvals_total{event="approved"}')) === approvedBefore + 1 ? true : null));
    expect(await metric('txe_approvals_pending')).toBe(0);
  }, 60_000);

  it('gives a webhook created under load every event after its fromBlock, and none before', async () => {
    const ned = user(`ned-${suffix}`).publicKey;
    const lanes = await Promise.all([0, 1, 2, 3].map((i) => fundedAccount(`lane${i}`)));
    await createHook('/busy-a', [EVENT.committed], [ned]); // keeps the router busy and ahead
    const blocks: number[] = [];
    const load = Promise.all(lanes.map(async (lane) => {
      for (let i = 0; i < 40; i++) blocks.push((await send(lane.publicKey, ned, [1n])).block);
    }));
    await until('a quarter of the load answered', () => (blocks.length >= 40 ? true : null));
    const w = await client.createWebhook({ url: `${base}/busy-b`, eventTypes: [EVENT.committed], accounts: [ned] }) as { webhook: { fromBlock: unknown } };
    const fromBlock = Number(String(w.webhook.fromBlock));
    await load;
    const expected = blocks.filter((n) => n > fromBlock).sort((x, y) => x - y);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(160);
    const fence = (await send(lanes[0].publicKey, ned, [1n])).block;
    const got = await arrivedBefore('/busy-b', fence);
    expect(got.map(blockOfRequest)).toEqual(expected);
  }, 60_000);

  it('goes back for a webhook whose fromBlock the router has passed already', async () => {
    // PostgreSQL is held back (a lock on txe_blocks), Kafka is not: the router reads blocks that
    // are not durable yet, so it is past the last durable block, which is the new webhook's fromBlock.
    const sam = await fundedAccount('sam');
    const tom = user(`tom-${suffix}`).publicKey;
    await createHook('/ahead-a', [EVENT.committed], [tom]);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    let created: { fromBlock: number } | null = null;
    const blocks: number[] = [];
    try {
      await db.query('begin');
      await db.query('lock table txe_blocks in exclusive mode');
      const records = [1n, 2n, 3n].map((amount, i) => transfer(sam.publicKey, tom, BigInt(i + 1), amount));
      for (const r of records) blocks.push((await client.submitBatch({ ...signedBatch([r]), ack: 'ordered' })).block);
      // Two groups of blocks are written at once (sinkWritesInFlightMax): the first two blocks reach
      // Kafka while PostgreSQL waits, the third waits for them.
      await until('the router past the durable blocks', () => (onPath('/ahead-a').length >= 2 ? true : null));
      const w = await client.createWebhook({ url: `${base}/ahead-b`, eventTypes: [EVENT.committed], accounts: [tom] }) as { webhook: { fromBlock: unknown } };
      created = { fromBlock: Number(String(w.webhook.fromBlock)) };
      expect(created.fromBlock).toBeLessThan(blocks[0]); // the router had routed those blocks already
    } finally {
      await db.query('commit');
      await db.end();
    }
    nonces.set(sam.publicKey.toString('hex'), 3n);
    const fence = (await send(sam.publicKey, tom, [4n])).block;
    const got = await arrivedBefore('/ahead-b', fence);
    expect(got.map(blockOfRequest)).toEqual(blocks);
    expect((await arrivedBefore('/ahead-a', fence)).map(blockOfRequest)).toEqual(blocks); // the first webhook does not get them twice
  }, 60_000);

  it('retries after 500, honours 429 Retry-After, and logs every try', async () => {
    const carol = await fundedAccount('carol');
    answers.set('/flaky', (n) => (n === 1 ? { status: 500 } : n === 2 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const hook = await createHook('/flaky', [EVENT.committed], [carol.publicKey]);
    await send(carol.publicKey, user(`dan-${suffix}`).publicKey, [5n]);
    const tries = await until('3 tries', () => (onPath('/flaky').length >= 3 ? onPath('/flaky') : null));
    expect(new Set(tries.map((t) => t.headers['webhook-id'])).size).toBe(1); // one event, three tries
    expect(tries[2].atMs - tries[1].atMs).toBeGreaterThanOrEqual(950); // Retry-After: 1 s
    for (const t of tries) verifyWebhook(hook.secret, t.headers, t.body);
    const log = await until('the third try logged', async () => {
      const rows = await deliveries(hook.id);
      return rows.length >= 3 ? rows : null;
    });
    expect(log.map((d) => [d.attempt, d.statusCode, d.outcome]).reverse()).toEqual([[1, 500, 'retrying'], [2, 429, 'retrying'], [3, 200, 'delivered']]);
    const retryAfterRow = log.find((d) => d.attempt === 2)!;
    expect(Number(String(retryAfterRow.nextAttemptAtMs)) - Number(String(retryAfterRow.attemptedAtMs))).toBeGreaterThanOrEqual(1000);
  }, 60_000);

  it('dead-letters an event after the last try to a receiver that always fails', async () => {
    const deadLetteredBefore = await metric('txe_webhook_deliveries_total{outcome="dead_lettered"}');
    const erin = await fundedAccount('erin');
    answers.set('/dead', () => ({ status: 503 }));
    const hook = await createHook('/dead', [EVENT.committed], [erin.publicKey]);
    await send(erin.publicKey, user(`fay-${suffix}`).publicKey, [7n]);
    await until(`${ATTEMPTS_MAX} tries`, () => (onPath('/dead').length >= ATTEMPTS_MAX ? true : null));
    const kafka = new Kafka({ brokers: kafkaBrokers(), clientId: 'txe-test-dead', logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `txe-test-dead-${suffix}` });
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}.dead-letters`, fromBeginning: true });
    const dead: { webhookId: string; attempt: number; lastStatusCode: number }[] = [];
    void consumer.run({ eachMessage: async ({ message }) => { dead.push(JSON.parse(message.value!.toString())); } });
    try {
      await until('the dead letter', () => (dead.some((d) => d.webhookId === hook.id) ? true : null));
    } finally {
      await consumer.disconnect();
    }
    expect(dead.filter((d) => d.webhookId === hook.id)).toEqual([expect.objectContaining({ attempt: ATTEMPTS_MAX, lastStatusCode: 503 })]);
    // The dead letter is sent before the try's log row is written: wait for the row. A further try
    // could only come from another retry message, and each is sent with a 'retrying' row: two rows,
    // for tries 1 and 2, mean the third try was the last.
    const log = await until('the last try logged', async () => {
      const rows = await deliveries(hook.id);
      return rows.some((d) => d.outcome === 'dead_lettered') ? rows : null;
    });
    expect(log.map((d) => [d.attempt, d.outcome])).toEqual([[3, 'dead_lettered'], [2, 'retrying'], [1, 'retrying']]);
    expect(onPath('/dead')).toHaveLength(ATTEMPTS_MAX);
    await until('the dead letter counted', async () => ((await metric('txe_webhook_deliveries_total{outcome="dead_lettered"}')) >= deadLetteredBefore + 1 ? true : null));
  }, 60_000);

  it('parks the other events of a failing webhook instead of trying each one, and still gives each its tries', async () => {
    const quin = await fundedAccount('quin');
    answers.set('/failing', () => ({ status: 500 }));
    const hook = await createHook('/failing', [EVENT.committed], [quin.publicKey]);
    await send(quin.publicKey, user(`ray-${suffix}`).publicKey, [1n, 2n, 3n, 4n, 5n]);
    const [first, second] = await until('two tries', () => (onPath('/failing').length >= 2 ? onPath('/failing') : null));
    // The first failure starts a backoff of at least 80 ms (100 ms - 20% jitter); the four other
    // events wait it out in the retry topic instead of being POSTed one after the other.
    expect(second.atMs - first.atMs).toBeGreaterThanOrEqual(70);
    await until('every event dead-lettered', async () => {
      const rows = await deliveries(hook.id);
      return rows.filter((d) => d.outcome === 'dead_lettered').length === 5 ? rows : null;
    });
    const tries = onPath('/failing').map((r) => String(r.headers['webhook-id']));
    expect(tries).toHaveLength(5 * ATTEMPTS_MAX);
    for (const id of new Set(tries)) expect(tries.filter((t) => t === id)).toHaveLength(ATTEMPTS_MAX);
  }, 60_000);

  it('signs with the old and the new secret during a rotation grace period, then only with the new one', async () => {
    const gus = await fundedAccount('gus');
    const hook = await createHook('/rotate', [EVENT.committed], [gus.publicKey]);
    const rotated = await client.rotateSecret(hook.id, 60_000) as { secret: string; webhook: { previousSecretExpiresAtMs: unknown } };
    expect(rotated.secret).not.toBe(hook.secret);
    expect(Number(String(rotated.webhook.previousSecretExpiresAtMs))).toBeGreaterThan(Date.now());
    await send(gus.publicKey, user(`hal-${suffix}`).publicKey, [1n]);
    const [during] = await until('the delivery in the grace period', () => (onPath('/rotate').length >= 1 ? onPath('/rotate') : null));
    verifyWebhook(hook.secret, during.headers, during.body);
    verifyWebhook(rotated.secret, during.headers, during.body);
    const again = await client.rotateSecret(hook.id, 1) as { secret: string; webhook: { previousSecretExpiresAtMs: unknown } };
    const graceEndsAtMs = Number(String(again.webhook.previousSecretExpiresAtMs));
    await until('the 1 ms grace period over', () => (Date.now() > graceEndsAtMs ? true : null));
    await send(gus.publicKey, user(`hal-${suffix}`).publicKey, [2n]);
    const after = await until('the delivery after the grace period', () => (onPath('/rotate').length >= 2 ? onPath('/rotate')[1] : null));
    verifyWebhook(again.secret, after.headers, after.body);
    expect(() => verifyWebhook(rotated.secret, after.headers, after.body)).toThrow(/signature/);
  }, 60_000);

  it('disables a webhook whose receiver answers 410 Gone', async () => {
    const ida = await fundedAccount('ida');
    answers.set('/gone', () => ({ status: 410 }));
    const hook = await createHook('/gone', [EVENT.committed], [ida.publicKey]);
    await send(ida.publicKey, user(`jo-${suffix}`).publicKey, [1n]);
    const listed = await until('the webhook disabled', async () => {
      const all = (await client.listWebhooks()) as { webhooks: { id: string; enabled: boolean; disabledReason: string }[] };
      const w = all.webhooks.find((x) => x.id === hook.id)!;
      return w.enabled ? null : w;
    });
    expect(listed.disabledReason).toMatch(/410/);
    // The webhook is disabled before the try's log row is written: wait for the row.
    const log = await until('the 410 try logged', async () => {
      const rows = await deliveries(hook.id);
      return rows.length > 0 ? rows : null;
    });
    expect(log.map((d) => d.outcome)).toEqual(['gone']);
  }, 60_000);

  it('keeps answering transactions while a receiver hangs', async () => {
    const kim = await fundedAccount('kim');
    const hanging = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hang`;
      await client.createWebhook({ url, eventTypes: [EVENT.committed], accounts: [kim.publicKey] });
      const answered = [];
      for (let i = 0; i < 20; i++) answered.push(await send(kim.publicKey, user(`lee-${suffix}`).publicKey, [1n, 1n]));
      expect(answered.every((r) => r.accepted === 2)).toBe(true);
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
  }, 60_000);

  it('starts a delivery thread that died again, and goes on delivering and counting', async () => {
    const olga = await fundedAccount('olga');
    await createHook('/after-restart', [EVENT.committed], [olga.publicKey]);
    // The thread is private to the engine: reach in to kill it as a crash would.
    await (engine.webhooks as unknown as { thread: { terminate(): Promise<number> } }).thread.terminate();
    const deliveredBefore = await metric('txe_webhook_deliveries_total{outcome="delivered"}');
    await send(olga.publicKey, user(`pia-${suffix}`).publicKey, [1n, 2n]);
    await until('both events after the restart', () => (onPath('/after-restart').length >= 2 ? true : null));
    // The new thread reports its counts every second: its two deliveries reach Prometheus.
    await until('the new thread\'s deliveries counted', async () => ((await metric('txe_webhook_deliveries_total{outcome="delivered"}')) >= deliveredBefore + 2 ? true : null));
  }, 60_000);

  it('refuses bad webhook input with clear errors', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);
    expect(await code(client.createWebhook({ url: 'ftp://example.invalid/x', eventTypes: [1] }))).toMatch(/^INVALID_ARGUMENT: url must be http/);
    expect(await code(client.createWebhook({ url: `${base}/x`, eventTypes: [] }))).toMatch(/^INVALID_ARGUMENT: event_types/);
    expect(await code(client.createWebhook({ url: `${base}/x`, eventTypes: [1], accounts: [Buffer.alloc(5)] }))).toMatch(/^INVALID_ARGUMENT: accounts\[0\]/);
    expect(await code(client.updateWebhook({ id: 'wh_nope', updateMask: ['url'], url: `${base}/y` }))).toMatch(/^NOT_FOUND/);
    expect(await code(client.listDeliveries({ webhookId: 'wh_nope' }))).toMatch(/^NOT_FOUND/);
    const hook = await createHook('/tmp', [EVENT.committed], [user(`nobody-${suffix}`).publicKey]);
    expect(await code(client.updateWebhook({ id: hook.id, updateMask: ['colour'] }))).toMatch(/^INVALID_ARGUMENT: update_mask/);
    expect(await code(client.deleteWebhook(hook.id))).toBe('OK');
    expect(await code(client.deleteWebhook(hook.id))).toMatch(/^NOT_FOUND/);
  });

  it('stores webhook secrets sealed, never in plain text, and still signs with them', async () => {
    const hook = await createHook('/sealed', [EVENT.committed], [user(`sealed-${suffix}`).publicKey]);
    const rotated = await client.rotateSecret(hook.id) as { secret: string };
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const row = (await db.query('select secret, previous_secret from txe_webhooks where id = $1', [hook.id])).rows[0] as { secret: string; previous_secret: string };
      expect(row.secret).toMatch(/^enc1:/);
      expect(row.previous_secret).toMatch(/^enc1:/);
      for (const plain of [hook.secret, rotated.secret, hook.secret.replace(/^whsec_/, ''), rotated.secret.replace(/^whsec_/, '')]) {
        expect(JSON.stringify(row)).not.toContain(plain);
      }
    } finally {
      await db.end();
    }
    expect(await client.deleteWebhook(hook.id)).toBeDefined();
  });

  it('does not start without a key to seal the secrets with, and says where to put one', async () => {
    const other = await freshDatabase('webhooks_nokey');
    const topic = `${blocksTopic}.nokey`;
    try {
      await expect(Engine.start(testConfig({ sinks: ['pg', 'kafka'], pgUrl: other, kafkaTopic: topic, webhookTopicPrefix: `${prefix}.nokey`, webhookSecretsKey: '' })))
        .rejects.toThrow(/need a key: run with a keys file from `txe keygen`.*TXE_WEBHOOK_SECRETS_KEY/);
    } finally {
      await dropDatabase(other);
      await deleteTopic(topic);
    }
  });

  it('refuses, at creation and at a URL change, a webhook aimed at a private, loopback or metadata address', async () => {
    // Each is refused before any delivery exists, so none is ever attempted.
    const code = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);
    const create = (url: string) => code(client.createWebhook({ url, eventTypes: [EVENT.committed] }));
    expect(await create('http://10.1.2.3/hook')).toMatch(/^INVALID_ARGUMENT: .*resolves to 10\.1\.2\.3, a private address/);
    expect(await create('http://169.254.169.254/latest/meta-data')).toMatch(/^INVALID_ARGUMENT: .*a link-local \(cloud metadata\) address/);
    expect(await create('http://[::1]:9464/metrics')).toMatch(/^INVALID_ARGUMENT: .*resolves to ::1, a loopback address/);
    expect(await create('http://127.0.0.2:9464/metrics')).toMatch(/^INVALID_ARGUMENT: .*a loopback address/); // only 127.0.0.1/32 is allowed
    expect(await create('https://[fd00:ec2::254]/')).toMatch(/^INVALID_ARGUMENT: .*a unique local \(private\) address/);
    expect(await create('http://[::ffff:10.0.0.1]/')).toMatch(/^INVALID_ARGUMENT: .*IPv4-mapped/); // ::ffff:127.0.0.1 is 127.0.0.1, allowed
    expect(await create('https://no-such-host.invalid/hook')).toMatch(/^INVALID_ARGUMENT: .*does not resolve/);
    const hook = await createHook('/allowed', [EVENT.committed], [user(`nobody2-${suffix}`).publicKey]);
    expect(await code(client.updateWebhook({ id: hook.id, updateMask: ['url'], url: 'http://192.168.1.1/' }))).toMatch(/^INVALID_ARGUMENT: .*a private address/);
    expect(await code(client.deleteWebhook(hook.id))).toBe('OK');
  });
});
