/* Helpers for tests of the durable path: a `txe serve` child process on fresh stores, and readers
 * that pull the whole history back out of PostgreSQL and Kafka for checking. */

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { startEngineProcess, type EngineProcess } from '../../bench/engine-process.js';
import { decodeBlockRecord, type DecodedBlockRecord } from '../../engine/stages/commit/kafka/block-record.js';
import { writeKeysFile } from '../../engine/keys-file.js';
import { kafkaBrokers } from './servers.js';
import { WEBHOOK_SECRETS_KEY, issuer, signer } from './fixtures.js';

export type ServeProcess = EngineProcess;

/** Starts `txe serve --sinks pg,kafka` on the given stores with the test issuer and signer. */
export async function serveDurable(pgUrl: string, topic: string, extra: string[] = []): Promise<ServeProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-durable-'));
  const keys = path.join(dir, 'keys.json');
  writeKeysFile(keys, { issuer, signer, secretsKey: WEBHOOK_SECRETS_KEY });
  // The tests kill it themselves (kill -9 included): no report of an unexpected exit.
  return startEngineProcess(['--keys', keys, '--sinks', 'pg,kafka', '--pg-url', pgUrl, '--kafka-brokers', kafkaBrokers().join(','), '--kafka-topic', topic, ...extra],
    { reportUnexpectedExit: false });
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
    const txs = await client.query('select seq, sender, nonce::text, recipient, amount::text, kind from txe_transactions order by seq');
    return {
      blocks: blocks.rows.map((b) => ({ number: Number(b.number), firstSeq: Number(b.first_seq), entries: b.entries, hash: b.hash, prevHash: b.prev_hash })),
      txs: txs.rows.map((t) => ({ seq: Number(t.seq), sender: t.sender.toString('hex'), nonce: t.nonce, recipient: t.recipient.toString('hex'), amount: BigInt(t.amount), kind: t.kind })),
    };
  } finally {
    await client.end();
  }
}

/** Every record of a topic, in offset order, read by a fresh consumer group. */
export async function readKafkaBlocks(topic: string, timeoutMs = 30_000): Promise<DecodedBlockRecord[]> {
  const kafka = new Kafka({ brokers: kafkaBrokers(), clientId: 'txe-test-reader', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const high = Number((await admin.fetchTopicOffsets(topic))[0].high);
  await admin.disconnect();
  if (high === 0) return [];
  const consumer = kafka.consumer({ groupId: `txe-test-${Math.random().toString(36).slice(2)}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const records: DecodedBlockRecord[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${records.length} of ${high} records from ${topic} in ${timeoutMs} ms`)), timeoutMs);
    void consumer.run({
      eachMessage: async ({ message }) => {
        records.push(decodeBlockRecord(message.value!));
        if (Number(message.offset) + 1 >= high) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await consumer.disconnect();
  return records;
}

export async function deleteTopic(topic: string): Promise<void> {
  const admin = new Kafka({ brokers: kafkaBrokers(), clientId: 'txe-test-admin', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
  await admin.disconnect();
}
