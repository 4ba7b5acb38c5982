/*
 * Durable stores for one `txe bench` run with sinks: a fresh PostgreSQL database and a fresh Kafka
 * topic (so recovery at engine start replays nothing and runs do not see each other), removed
 * afterwards; and the raw COPY BINARY ceiling of this PostgreSQL, measured in the same run.
 */

import crypto from 'node:crypto';
import pg from 'pg';
import { TRANSACTION_COLUMNS, copyIn } from '../engine/stages/commit/pg/client.js';
import { CopyWriter } from '../engine/stages/commit/pg/copy-binary.js';
import { writeTransaction } from '../engine/stages/commit/pg/pg-sink.js';
import { BODY_BYTES, KIND_TRANSFER, writeBody } from '../engine/core/record.js';

export interface BenchStores { pgUrl: string | null; kafkaTopic: string | null; kafkaBrokers: string[]; cleanup(): Promise<void> }

const ADMIN_PG_URL = process.env.TXE_PG_URL ?? 'postgres://txe:txe@127.0.0.1:55432/txe';
const BROKERS = (process.env.TXE_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');

export async function createBenchStores(sinks: string[]): Promise<BenchStores> {
  const id = `${Date.now()}_${crypto.randomBytes(3).toString('hex')}`;
  let pgUrl: string | null = null;
  if (sinks.includes('pg')) {
    await adminQuery(`create database txe_bench_${id}`);
    const url = new URL(ADMIN_PG_URL);
    url.pathname = `/txe_bench_${id}`;
    pgUrl = url.toString();
  }
  const kafkaTopic = sinks.includes('kafka') ? `txe.bench.${id}` : null;
  return {
    pgUrl, kafkaTopic, kafkaBrokers: BROKERS,
    async cleanup() {
      if (pgUrl) await adminQuery(`drop database if exists txe_bench_${id} with (force)`);
      if (kafkaTopic) {
        const { Kafka, logLevel } = (await import('kafkajs')).default;
        const admin = new Kafka({ brokers: BROKERS, clientId: 'txe-bench', logLevel: logLevel.NOTHING }).admin();
        await admin.connect();
        await admin.deleteTopics({ topics: [kafkaTopic], timeout: 10_000 }).catch(() => undefined);
        await admin.disconnect();
      }
    },
  };
}

export const COPY_CEILING_ROUNDS = 3;
export const COPY_CEILING_ROWS = 200_000;

/**
 * Rows/s of a COPY BINARY of transaction rows into a logged table of the sink's shape (primary key
 * included): the median of `rounds` COPYs of `rows` rows, each into a fresh table. One COPY of
 * 200k rows takes ~0.3-0.5 s here, and single ones ranged from 392k to 612k rows/s between runs of
 * one afternoon (bench/RESULTS.md, session 8): too noisy for the ratio the durable rate is judged by.
 */
export async function measureCopyCeiling(pgUrl: string, rows = COPY_CEILING_ROWS, rounds = COPY_CEILING_ROUNDS): Promise<number> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  const payload = transactionRows(rows);
  try {
    const rates: number[] = [];
    for (let i = 0; i < rounds; i++) rates.push(await copyOnce(client, payload, rows));
    return rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)];
  } finally {
    await client.end();
  }
}

async function copyOnce(client: pg.Client, payload: Buffer, rows: number): Promise<number> {
  const table = `txe_ceiling_${crypto.randomBytes(3).toString('hex')}`;
  try {
    await client.query(`create table ${table} (like txe_transactions including all)`).catch(async () => {
      const { MIGRATIONS } = await import('../engine/stages/commit/pg/schema.js');
      for (const m of MIGRATIONS) await client.query(m);
      await client.query(`create table ${table} (like txe_transactions including all)`);
    });
    const started = performance.now();
    await client.query('begin');
    await copyIn(client, `copy ${table} (${TRANSACTION_COLUMNS}) from stdin (format binary)`, payload);
    await client.query('commit');
    return rows / ((performance.now() - started) / 1000);
  } finally {
    await client.query(`drop table if exists ${table}`);
  }
}

function transactionRows(rows: number): Buffer {
  const body = Buffer.alloc(BODY_BYTES);
  const out = new CopyWriter(rows * 220);
  for (let i = 0; i < rows; i++) {
    writeBody(body, 0, { kind: KIND_TRANSFER, sender: crypto.randomBytes(32), recipient: crypto.randomBytes(32), nonce: BigInt(i + 1), amount: 1n, timestampMs: BigInt(Date.now()) });
    writeTransaction(out, body, 0, i + 1, Math.floor(i / 8190) + 1, i % 8190, 0);
  }
  return out.finish();
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
