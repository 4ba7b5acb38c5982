/* Helpers for tests of the durable path: a `txe serve` child process on fresh stores, and readers
 * that pull the whole history back out of PostgreSQL and Kafka for checking. */

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import pg from 'pg';
import { startEngineProcess, type EngineProcess } from '../../bench/engine-process.js';
import { decodeBlockRecord, type DecodedBlockRecord } from '../../engine/stages/commit/kafka/block-record.js';
import { writeKeysFile } from '../../engine/keys-file.js';
import { kafkaBrokers } from './servers.js';
import { WEBHOOK_SECRETS_KEY, issuer, signer } from './fixtures.js';

export type ServeProcess = EngineProcess;

/** Starts `txe serve --sinks pg,kafka` on the given stores with the test issuer and signer. */
export async function serveDurable(pgUrl: string, topic: string, extra: string[] = [], onLogLine?: (line: string) => void): Promise<ServeProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-durable-'));
  const keys = path.join(dir, 'keys.json');
  writeKeysFile(keys, { issuer, signer, secretsKey: WEBHOOK_SECRETS_KEY });
  // The tests kill it themselves (kill -9 included): no report of an unexpected exit.
  return startEngineProcess(['--keys', keys, '--sinks', 'pg,kafka', '--pg-url', pgUrl, '--kafka-brokers', kafkaBrokers().join(','), '--kafka-topic', topic, ...extra],
    { reportUnexpectedExit: false, onLogLine });
}

export interface PgHistory {
  blocks: { number: number; firstSeq: number; entries: number; hash: Buffer; prevHash: Buffer }[];
  txs: { seq: number; sender: string; nonce: string; recipient: string; amount: bigint; kind: number }[];
}

export async function readPgHistory(url: string): Promise<PgHistory> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const blocks = await client.query('select number, first_seq, entries, hash, prev_hash from txe_blocks order by number');
    const txs = await client.query('select seq, sender, nonce::text, recipient, amount::text, kind from txe_transaction_fields order by seq');
    return {
      blocks: blocks.rows.map((b) => ({ number: Number(b.number), firstSeq: Number(b.first_seq), entries: b.entries, hash: b.hash, prevHash: b.prev_hash })),
      txs: txs.rows.map((t) => ({ seq: Number(t.seq), sender: t.sender.toString('hex'), nonce: t.nonce, recipient: t.recipient.toString('hex'), amount: BigInt(t.amount), kind: t.kind })),
    };
  } finally {
    await client.end();
  }
}

/** A committed record of the block topic as a consumer sees it. */
export interface KafkaBlockRecord { offset: number; key: Buffer; timestamp: string; record: DecodedBlockRecord }

/**
 * Every committed record of a topic, in offset order, read by a fresh consumer group with
 * read_committed (aborted records and commit markers are never handed over). The read is complete
 * once the consumer has passed the high watermark taken at the start; kafkajs reports the offsets
 * a fetch covered, markers included, after it has handed over the batch's records. The writers must
 * be idle (an open transaction would hold the read short of that watermark until the timeout). A
 * commit returns before the broker has written its markers, and the end offset a read_committed
 * reader is told stops short of them until then, so the read waits for that offset to settle.
 */
export async function readKafkaRecords(topic: string, timeoutMs = 30_000, brokers = kafkaBrokers()): Promise<KafkaBlockRecord[]> {
  const kafka = new Kafka({ brokers, clientId: 'txe-test-reader', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `txe-test-${Math.random().toString(36).slice(2)}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
  const records: KafkaBlockRecord[] = [];
  try {
    const high = await settledHigh(admin, topic);
    if (high === 0) return [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${records.length} records of ${topic} (high watermark ${high}) in ${timeoutMs} ms`)), timeoutMs);
      const passed = (offset: number) => { if (offset >= high - 1) { clearTimeout(timer); resolve(); } };
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => passed(Number(e.payload.lastOffset)));
      void consumer.run({
        eachMessage: async ({ message }) => {
          records.push({ offset: Number(message.offset), key: message.key!, timestamp: message.timestamp, record: decodeBlockRecord(message.value!) });
          passed(Number(message.offset));
        },
      });
    });
    return records;
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

const SETTLE_MS = 100;

/** The topic's end offset once two reads SETTLE_MS apart agree (bounded: 50 tries). */
async function settledHigh(admin: Admin, topic: string): Promise<number> {
  const read = async () => Number((await admin.fetchTopicOffsets(topic))[0].high);
  let high = await read();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const again = await read();
    if (again === high) return high;
    high = again;
  }
  throw new Error(`topic ${topic}'s end offset kept moving (${high}): a writer is still at work`);
}

/** The blocks of every committed record of a topic, in offset order. */
export async function readKafkaBlocks(topic: string, timeoutMs = 30_000, brokers = kafkaBrokers()): Promise<DecodedBlockRecord[]> {
  return (await readKafkaRecords(topic, timeoutMs, brokers)).map((r) => r.record);
}

export async function deleteTopic(topic: string): Promise<void> {
  const admin = new Kafka({ brokers: kafkaBrokers(), clientId: 'txe-test-admin', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
  await admin.disconnect();
}
