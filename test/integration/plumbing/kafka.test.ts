// Proves the Kafka plumbing txe relies on, with kafkajs against the real broker:
//  - admin creates a uniquely named topic with 3 partitions, replication factor 1
//    and explicit topic config, and the broker reports exactly that back;
//  - an idempotent producer (idempotent: true, maxInFlightRequests: 1, acks -1 on
//    every send) sends 3 keys x 300 messages over several send() calls, each value
//    carrying the key's sequence number;
//  - a consumer in a fresh group, fromBeginning, receives every message exactly once
//    (no gaps, no duplicates), per key in order (offsets and sequence numbers strictly
//    increasing) and all messages of a key on one partition; each send()'s acks name
//    exactly those partitions at the expected base offsets, and the partitions' log
//    end offsets hold exactly what was sent, so the broker's log has no duplicates.
// Every wait is bounded; afterAll disconnects everything and deletes the topic and group.

import { randomBytes } from 'node:crypto';
import {
  ConfigResourceTypes,
  Kafka,
  Partitioners,
  logLevel,
  type Admin,
  type LogEntry,
  type logCreator, type Consumer, type Producer, type RecordMetadata,
} from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers } from '../../support/servers.js';
import { cleanUp, withTimeout } from '../../support/async.js';

// Chosen so murmur2 (the Java-compatible DefaultPartitioner) spreads them over all 3 partitions.
const KEYS = ['acct-alpha', 'acct-charlie', 'acct-echo'] as const;
const PER_KEY = 300;
const SENDS = 6; // send() calls; each carries PER_KEY / SENDS messages per key, keys interleaved
const PARTITIONS = 3;
const WAIT_MS = 30_000;

interface Received {
  key: string;
  seq: number;
  partition: number;
  offset: bigint;
}

// kafkajs logs every error *response* at ERROR, including retriable ones it then retries
// (e.g. "coordinator is loading" right after the broker starts). Those are noise: real
// failures surface as rejected promises. Everything else at ERROR is printed.
const quietLogs: logCreator = () => (entry: LogEntry) => {
  if (entry.namespace === 'Connection' && entry.log.message.startsWith('Response ')) return;
  console.error(`[kafkajs] ${entry.namespace} ${entry.log.message}`, entry.log);
};

describe('Kafka plumbing (kafkajs): idempotent producer, keyed ordering, fresh consumer group', () => {
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const topic = `txe-test-plumbing-${suffix}`;
  const groupId = `txe-test-plumbing-group-${suffix}`;

  const kafka = new Kafka({
    clientId: `txe-test-plumbing-${suffix}`,
    brokers: kafkaBrokers(),
    logLevel: logLevel.ERROR,
    logCreator: quietLogs,
    connectionTimeout: 5_000,
    requestTimeout: 10_000,
  });
  const admin: Admin = kafka.admin();
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner, // Java-compatible murmur2 on the key
  });
  const consumer: Consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 200,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  let topicCreated = false;
  let consumerStarted = false;

  beforeAll(async () => {
    await withTimeout(admin.connect(), WAIT_MS, 'admin.connect');
    const created = await withTimeout(
      admin.createTopics({
        waitForLeaders: true,
        timeout: WAIT_MS,
        topics: [
          {
            topic,
            numPartitions: PARTITIONS,
            replicationFactor: 1,
            configEntries: [
              { name: 'cleanup.policy', value: 'delete' },
              { name: 'min.insync.replicas', value: '1' },
              { name: 'retention.ms', value: String(60 * 60 * 1000) },
              { name: 'message.timestamp.type', value: 'CreateTime' },
            ],
          },
        ],
      }),
      WAIT_MS,
      'admin.createTopics',
    );
    expect(created).toBe(true);
    topicCreated = true;
    await withTimeout(producer.connect(), WAIT_MS, 'producer.connect');
  });

  afterAll(async () => {
    // Each step independent: a failing one must not leave the others undone.
    const steps: [string, () => Promise<unknown>][] = [
      ['consumer.disconnect', () => consumer.disconnect()],
      ['producer.disconnect', () => producer.disconnect()],
      ['admin.deleteGroups', () => (consumerStarted ? admin.deleteGroups([groupId]) : Promise.resolve())],
      ['admin.deleteTopics', () => (topicCreated ? admin.deleteTopics({ topics: [topic], timeout: 10_000 }) : Promise.resolve())],
      ['admin.disconnect', () => admin.disconnect()],
    ];
    await cleanUp('kafka test', steps);
  });

  it('created the topic with 3 partitions, RF 1 and the explicit config', async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics).toHaveLength(1);
    const parts = meta.topics[0].partitions;
    expect(parts.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
    for (const p of parts) expect(p.replicas).toHaveLength(1);

    const cfg = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas', 'retention.ms'] }],
    });
    const entries = Object.fromEntries(cfg.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
    expect(entries).toEqual({ 'min.insync.replicas': '1', 'retention.ms': '3600000' });
  });

  it('delivers every keyed message exactly once, in order, one partition per key', async () => {
    // --- produce: several send() calls, keys interleaved inside each, acks -1 explicitly.
    const perSend = PER_KEY / SENDS;
    const acks: RecordMetadata[][] = [];
    for (let s = 0; s < SENDS; s++) {
      const messages: { key: string; value: string }[] = [];
      for (let i = 0; i < perSend; i++) {
        for (const key of KEYS) {
          const seq = s * perSend + i;
          messages.push({ key, value: JSON.stringify({ key, seq }) });
        }
      }
      const meta = await withTimeout(producer.send({ topic, acks: -1, messages }), WAIT_MS, `producer.send #${s}`);
      for (const m of meta) {
        expect(m.topicName).toBe(topic);
        expect(m.errorCode).toBe(0);
      }
      acks.push(meta);
    }

    // --- consume: fresh group from the beginning, until it has read every partition to its end
    // offset (taken now, after the last send), or 30 s. Then every record in the log has been
    // read, duplicates included, and the counts below are final.
    const received: Received[] = [];
    const distinct = new Set<string>();
    const total = KEYS.length * PER_KEY;
    const endOffsets = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
    const atEnd = new Set([...endOffsets].filter(([, high]) => high === 0n).map(([p]) => p));
    let done!: () => void;
    const allIn = new Promise<void>((resolve) => {
      done = resolve;
    });

    await withTimeout(consumer.connect(), WAIT_MS, 'consumer.connect');
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    consumerStarted = true;
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const key = message.key?.toString() ?? '<no key>';
        const value = JSON.parse(message.value?.toString() ?? 'null') as { key: string; seq: number } | null;
        if (value === null || value.key !== key) throw new Error(`bad message at ${partition}/${message.offset}`);
        received.push({ key, seq: value.seq, partition, offset: BigInt(message.offset) });
        distinct.add(`${key}#${value.seq}`);
        if (BigInt(message.offset) + 1n === endOffsets.get(partition)) atEnd.add(partition);
        if (atEnd.size === endOffsets.size) done();
      },
    });
    await withTimeout(allIn, WAIT_MS, `consuming ${total} messages (got ${received.length})`).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}; received so far: ${received.length}`);
    });
    await consumer.stop();

    // --- exactly once: no duplicates, no gaps.
    expect(received.length).toBe(total);
    expect(distinct.size).toBe(total);

    // --- per key: one partition, offsets and sequence numbers strictly increasing, 0..PER_KEY-1.
    const partitionOfKey = new Map<string, number>();
    for (const key of KEYS) {
      const mine = received.filter((r) => r.key === key);
      expect(mine.map((r) => r.seq), `${key} sequence`).toEqual(Array.from({ length: PER_KEY }, (_, i) => i));
      const parts = new Set(mine.map((r) => r.partition));
      expect(parts.size, `${key} partitions`).toBe(1);
      partitionOfKey.set(key, mine[0].partition);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i].offset > mine[i - 1].offset, `${key} offset ${mine[i].offset} after ${mine[i - 1].offset}`).toBe(true);
      }
    }

    // The keys were picked to cover every partition, so each partition's checks below bite.
    expect(new Set(partitionOfKey.values()).size).toBe(PARTITIONS);

    // --- per partition (all keys): offsets strictly increasing in delivery order.
    for (let p = 0; p < PARTITIONS; p++) {
      const offs = received.filter((r) => r.partition === p).map((r) => r.offset);
      for (let i = 1; i < offs.length; i++) expect(offs[i] > offs[i - 1], `partition ${p} offsets`).toBe(true);
    }

    // --- the acks: send #s wrote to partition p at base offset s * (messages per send to p).
    for (let s = 0; s < SENDS; s++) {
      const got = acks[s].map((m) => ({ partition: m.partition, baseOffset: m.baseOffset })).sort((a, b) => a.partition - b.partition);
      const want = [...new Set(partitionOfKey.values())].sort().map((p) => ({
        partition: p,
        baseOffset: String(s * perSend * KEYS.filter((k) => partitionOfKey.get(k) === p).length),
      }));
      expect(got, `acks of send #${s}`).toEqual(want);
    }

    // --- the log itself: each partition's end offset is exactly what we sent to it (the
    // topic is fresh, so offsets start at 0): no duplicate writes from producer retries.
    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets).toHaveLength(PARTITIONS);
    for (const o of offsets) {
      const expected = KEYS.filter((k) => partitionOfKey.get(k) === o.partition).length * PER_KEY;
      expect({ partition: o.partition, low: o.low, high: o.high }).toEqual({
        partition: o.partition,
        low: '0',
        high: String(expected),
      });
    }
  });
});
