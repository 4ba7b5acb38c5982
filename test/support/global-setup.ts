// vitest globalSetup: before any test file runs, prove that the real servers the
// integration tests need actually answer. If one does not, fail the whole run
// with a message naming the server, its address, and how to start it. Tests are
// never skipped silently because a server is missing.

import pg from 'pg';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaBrokers, pgUrlForDisplay, pgUrl } from './servers.js';

const PG_CONNECT_TIMEOUT_MS = 5_000;
const KAFKA_TOTAL_BUDGET_MS = 20_000; // whole Kafka check, retries included (≤ 30 s)
const KAFKA_ATTEMPT_TIMEOUT_MS = 8_000;
const KAFKA_RETRY_PAUSE_MS = 1_000;

const HOW_TO_START =
  'Start the servers with `bash infra/up.sh` (then export what it prints), ' +
  'or run the tests through `npm test`, which starts and stops them ' +
  '(equivalently: `bash infra/with-servers.sh npx vitest run ...`).';

function errText(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) {
    return e.errors.map(errText).join('; ');
  }
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function checkPostgres(): Promise<string | null> {
  const client = new pg.Client({
    connectionString: pgUrl(),
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    query_timeout: PG_CONNECT_TIMEOUT_MS,
  });
  // An 'error' event without a listener would crash the process.
  client.on('error', () => undefined);
  try {
    await withTimeout(client.connect(), PG_CONNECT_TIMEOUT_MS + 1_000, 'connect');
    const r = await client.query<{ one: number }>('select 1 as one');
    if (r.rows[0]?.one !== 1) return `select 1 returned ${JSON.stringify(r.rows)}`;
    return null;
  } catch (e) {
    return errText(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkKafka(): Promise<string | null> {
  const start = Date.now();
  const deadline = start + KAFKA_TOTAL_BUDGET_MS;
  let last = 'no attempt made';
  for (let attempt = 1; ; attempt++) {
    const kafka = new Kafka({
      clientId: 'txe-test-global-setup',
      brokers: kafkaBrokers(),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      requestTimeout: 5_000,
      retry: { retries: 0 }, // we retry ourselves, within a hard total budget
    });
    const admin = kafka.admin();
    try {
      const left = Math.max(1_000, Math.min(KAFKA_ATTEMPT_TIMEOUT_MS, deadline - Date.now()));
      await withTimeout(
        (async () => {
          await admin.connect();
          await admin.listTopics();
        })(),
        left,
        'admin connect + listTopics',
      );
      return null;
    } catch (e) {
      last = `${attempt} attempt(s) over ${((Date.now() - start) / 1000).toFixed(1)} s, last error: ${errText(e)}`;
    } finally {
      await withTimeout(admin.disconnect(), 2_000, 'disconnect').catch(() => undefined);
    }
    if (Date.now() + KAFKA_RETRY_PAUSE_MS >= deadline) return last;
    await new Promise((r) => setTimeout(r, KAFKA_RETRY_PAUSE_MS));
  }
}

export default async function globalSetup(): Promise<void> {
  const [pgErr, kafkaErr] = await Promise.all([checkPostgres(), checkKafka()]);
  const source = (v: string): string =>
    process.env[v] !== undefined && process.env[v] !== '' ? `from ${v}` : `default; ${v} was not set`;
  const problems: string[] = [];
  if (pgErr !== null) {
    problems.push(`PostgreSQL is unreachable at ${pgUrlForDisplay()} (${source('TXE_PG_URL')}): ${pgErr}`);
  }
  if (kafkaErr !== null) {
    problems.push(
      `Kafka is unreachable at ${kafkaBrokers().join(',')} (${source('TXE_KAFKA_BROKERS')}): ${kafkaErr}`,
    );
  }
  if (problems.length > 0) {
    throw new Error(
      `txe tests need real servers, and ${problems.length === 2 ? 'both are' : 'one is'} down:\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        `\n${HOW_TO_START}`,
    );
  }
}
