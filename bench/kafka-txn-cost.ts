/*
 * What a Kafka transaction per group of blocks costs, against the idempotent sends the sink uses
 * today (issue 11: fence a zombie producer with a transactional.id instead of waiting out its
 * request timeout). Each variant publishes the same groups of block-sized records (~1 MB) to a
 * fresh one-partition topic, one group after the other as the sink does, and reports groups/s,
 * MB/s and the p50/p99 time of one group.
 *
 *   npm run build && node dist/bench/kafka-txn-cost.js [groups=60] [blocksPerGroup=4]
 *
 * Variants: idempotent (today: one send per group); transactional with kafkajs's default retry
 * (initialRetryTime 300 ms: back-to-back transactions can wait on CONCURRENT_TRANSACTIONS, kafkajs
 * issues #304, #1315); transactional with initialRetryTime 10 ms. Also measured: how long a new
 * producer with the same transactional.id takes to fence the old one (its first transaction), and
 * that the old one's next send is refused.
 */

import crypto from 'node:crypto';
import kafkajs from 'kafkajs';

const { Kafka, logLevel, CompressionTypes } = kafkajs;
const brokers = (process.env.TXE_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const groups = Number(process.argv[2] ?? 60);
const blocksPerGroup = Number(process.argv[3] ?? 4);
const RECORD_BYTES = 1_060_000; // a full 8190-transaction block record
const kafka = new Kafka({ clientId: 'txe-txn-cost', brokers, logLevel: logLevel.NOTHING });

async function freshTopic(): Promise<string> {
  const topic = `txe.txn-cost.${crypto.randomBytes(4).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }] }] });
  await admin.disconnect();
  return topic;
}

function groupMessages(g: number) {
  return Array.from({ length: blocksPerGroup }, (_, i) => ({ key: String(g * blocksPerGroup + i + 1), value: crypto.randomBytes(RECORD_BYTES), partition: 0 }));
}

/** Sends at most 3 records a request, as the sink does under max.message.bytes 4 MiB. */
function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function run(name: string, transactional: boolean, initialRetryTime: number): Promise<void> {
  const topic = await freshTopic();
  const producer = kafka.producer(transactional
    ? { transactionalId: `txe.txn-cost.${topic}`, idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime, retries: 8 } }
    : { idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime, retries: 8 } });
  await producer.connect();
  const payload = Array.from({ length: groups }, (_, g) => groupMessages(g));
  const times: number[] = [];
  const started = performance.now();
  for (const messages of payload) {
    const t0 = performance.now();
    if (transactional) {
      const txn = await producer.transaction();
      for (const part of chunks(messages, 3)) await txn.send({ topic, messages: part, acks: -1, compression: CompressionTypes.None });
      await txn.commit();
    } else {
      for (const part of chunks(messages, 3)) await producer.send({ topic, messages: part, acks: -1, compression: CompressionTypes.None });
    }
    times.push(performance.now() - t0);
  }
  const s = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  const mb = (groups * blocksPerGroup * RECORD_BYTES) / 1e6;
  console.log(`${name.padEnd(36)} ${(groups / s).toFixed(1)} groups/s  ${(mb / s).toFixed(0)} MB/s  group p50 ${times[Math.floor(times.length / 2)].toFixed(1)} ms  p99 ${times[Math.floor(times.length * 0.99)].toFixed(1)} ms`);
  await producer.disconnect();
}

async function fencing(): Promise<void> {
  const topic = await freshTopic();
  const transactionalId = `txe.txn-cost.fence.${topic}`;
  const old = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 10, retries: 2 } });
  await old.connect();
  const first = await old.transaction();
  await first.send({ topic, messages: [{ key: '1', value: Buffer.from('old'), partition: 0 }] });
  await first.commit();
  const fresh = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 10, retries: 8 } });
  const t0 = performance.now();
  await fresh.connect();
  const fence = await fresh.transaction(); // InitProducerId: the epoch bump that fences `old`
  await fence.abort();
  const fencedMs = performance.now() - t0;
  let refused = 'accepted (not fenced!)';
  try {
    const late = await old.transaction();
    await late.send({ topic, messages: [{ key: '2', value: Buffer.from('zombie'), partition: 0 }] });
    await late.commit();
  } catch (error) {
    refused = `refused: ${(error as Error).name}: ${(error as Error).message.slice(0, 80)}`;
  }
  console.log(`fencing: a new producer's first transaction took ${fencedMs.toFixed(0)} ms; the old producer's next send was ${refused}`);
  await old.disconnect().catch(() => undefined);
  await fresh.disconnect();
}

await run('idempotent sends (today)', false, 100);
await run('transactional, initialRetryTime 300 ms', true, 300);
await run('transactional, initialRetryTime 10 ms', true, 10);
await fencing();
