/*
 * How txe opens PostgreSQL connections and streams COPY into them, for the sink, snapshots,
 * recovery and the bench's COPY ceiling alike.
 */

import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

export interface PgClientOptions { connectTimeoutMs: number; statementTimeoutMs: number; name: string }

/**
 * A client with explicit timeouts and an 'error' listener: pg emits 'error' when the server goes
 * away, and an unheard 'error' would end the process. The failure still reaches the caller through
 * the query it awaits.
 */
export function pgClient(url: string, o: PgClientOptions): pg.Client {
  const client = new pg.Client({
    connectionString: url, application_name: o.name, connectionTimeoutMillis: o.connectTimeoutMs,
    statement_timeout: o.statementTimeoutMs, query_timeout: o.statementTimeoutMs, keepAlive: true,
  });
  client.on('error', () => undefined);
  return client;
}

/** The columns of a txe_transactions row, in the order writeTransaction encodes them. */
export const TRANSACTION_COLUMNS = 'seq, block, position, result, body';

/** Streams one COPY ... FROM STDIN payload and resolves when the server has taken it all. */
export function copyIn(client: pg.Client, sql: string, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(sql));
    stream.on('error', reject);
    stream.on('finish', () => resolve());
    stream.end(payload);
  });
}

/** Runs one COPY ... TO STDOUT and resolves with everything it sent, as one buffer. */
export function copyOut(client: pg.Client, sql: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stream = client.query(copyTo(sql));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * A small pool for the services' occasional queries (approvals, webhooks): pg.Pool replaces a
 * connection the server dropped, and `max` bounds the connections.
 */
export function pgPool(url: string, o: PgClientOptions & { max: number }): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url, application_name: o.name, connectionTimeoutMillis: o.connectTimeoutMs,
    statement_timeout: o.statementTimeoutMs, query_timeout: o.statementTimeoutMs, max: o.max, keepAlive: true,
  });
  pool.on('error', () => undefined); // an idle client's lost connection; the pool replaces it
  return pool;
}
