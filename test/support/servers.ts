// The one place tests learn where the real servers are. `bash infra/with-servers.sh`
// (and so `npm test`) exports these; the defaults match infra/lib.sh's ports.

export const DEFAULT_PG_URL = 'postgres://txe:txe@127.0.0.1:55432/txe';
export const DEFAULT_KAFKA_BROKERS = '127.0.0.1:19092';

/** PostgreSQL connection string (TXE_PG_URL). */
export function pgUrl(): string {
  const v = process.env.TXE_PG_URL;
  return v !== undefined && v.trim() !== '' ? v.trim() : DEFAULT_PG_URL;
}

/** Kafka bootstrap brokers (TXE_KAFKA_BROKERS, comma-separated host:port). */
export function kafkaBrokers(): string[] {
  const v = process.env.TXE_KAFKA_BROKERS;
  const raw = v !== undefined && v.trim() !== '' ? v : DEFAULT_KAFKA_BROKERS;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The PG URL with its password masked, for error messages. */
export function pgUrlForDisplay(): string {
  try {
    const u = new URL(pgUrl());
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable TXE_PG_URL>';
  }
}

/**
 * A new, empty database on the test server for one test file, so files never see each other's
 * history. Returns its URL; the file drops it with dropDatabase in afterAll.
 */
export async function freshDatabase(name: string): Promise<string> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: pgUrl() });
  await admin.connect();
  try {
    const database = `txe_t_${name}_${Math.random().toString(36).slice(2, 8)}`;
    await admin.query(`create database ${database}`);
    const url = new URL(pgUrl());
    url.pathname = `/${database}`;
    return url.toString();
  } finally {
    await admin.end();
  }
}

/**
 * A fresh database and one client connected to it, for the tests of one file: `db` for checking
 * what was written, `url` for what the test starts; `drop` ends the client and drops the database.
 */
export async function freshDatabaseWithClient(name: string): Promise<{ url: string; db: import('pg').Client; drop: () => Promise<void> }> {
  const { default: pg } = await import('pg');
  const url = await freshDatabase(name);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  return { url, db, drop: async () => { await db.end(); await dropDatabase(url); } };
}

export async function dropDatabase(url: string): Promise<void> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: pgUrl() });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${new URL(url).pathname.slice(1)} with (force)`);
  } finally {
    await admin.end();
  }
}
