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
