/*
 * Webhooks and their delivery log in PostgreSQL (tables in commit/pg/schema.ts). Webhooks are few
 * (webhooksMax) and read once at start; every change goes through here first, then to the
 * in-memory copy the router and the deliverers read.
 */

import crypto from 'node:crypto';
import type pg from 'pg';
import type { EventType } from './events.js';
import { SecretBox } from './secret-box.js';

export interface WebhookRecord {
  id: string;
  url: string;
  eventTypes: EventType[];
  accounts: Buffer[];
  description: string;
  enabled: boolean;
  disabledReason: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAtMs: number;
  secretRotatedAtMs: number;
  fromBlock: number;
  createdAtMs: number;
  updatedAtMs: number;
}

export type DeliveryOutcome = 'delivered' | 'retrying' | 'dead_lettered' | 'gone' | 'skipped';

export interface DeliveryRecord {
  id?: number;
  webhookId: string;
  eventId: string;
  eventType: string;
  block: number;
  attempt: number;
  attemptedAtMs: number;
  statusCode: number;
  error: string;
  durationMs: number;
  outcome: DeliveryOutcome;
  nextAttemptAtMs: number;
}

export function newWebhookId(): string {
  return `wh_${crypto.randomBytes(12).toString('hex')}`;
}

interface WebhookRow {
  id: string; url: string; event_types: EventType[]; accounts: Buffer[]; description: string; enabled: boolean; disabled_reason: string;
  secret: string; previous_secret: string | null; previous_secret_expires_at: Date | null; secret_rotated_at: Date; from_block: string;
  created_at: Date; updated_at: Date;
}

const fromRow = (r: WebhookRow, box: SecretBox): WebhookRecord => ({
  id: r.id, url: r.url, eventTypes: r.event_types, accounts: r.accounts, description: r.description, enabled: r.enabled,
  disabledReason: r.disabled_reason, secret: box.open(r.secret, r.id), previousSecret: r.previous_secret === null ? null : box.open(r.previous_secret, r.id),
  previousSecretExpiresAtMs: r.previous_secret_expires_at?.getTime() ?? 0, secretRotatedAtMs: r.secret_rotated_at.getTime(),
  fromBlock: Number(r.from_block), createdAtMs: r.created_at.getTime(), updatedAtMs: r.updated_at.getTime(),
});

/** The columns insert and update both write, in the order of writtenValues. */
const WRITTEN_COLUMNS = ['id', 'url', 'event_types', 'accounts', 'description', 'enabled', 'disabled_reason', 'secret', 'previous_secret',
  'previous_secret_expires_at', 'secret_rotated_at', 'from_block', 'updated_at'];

const writtenValues = (w: WebhookRecord, box: SecretBox): unknown[] => [
  w.id, w.url, w.eventTypes, w.accounts, w.description, w.enabled, w.disabledReason, box.seal(w.secret, w.id), w.previousSecret === null ? null : box.seal(w.previousSecret, w.id),
  w.previousSecretExpiresAtMs ? new Date(w.previousSecretExpiresAtMs) : null, new Date(w.secretRotatedAtMs), w.fromBlock, new Date(w.updatedAtMs),
];

export class WebhookStore {
  constructor(private readonly pool: pg.Pool, private readonly box: SecretBox) {}

  async all(): Promise<WebhookRecord[]> {
    const r = await this.pool.query<WebhookRow>('select * from txe_webhooks where not deleted order by created_at, id');
    return r.rows.map((row) => fromRow(row, this.box));
  }

  /** Seals the secrets still stored in plain text (rows from before sealing); returns how many rows. */
  async sealPlainSecrets(): Promise<number> {
    const r = await this.pool.query<WebhookRow>(`select * from txe_webhooks where secret not like 'enc1:%' or previous_secret not like 'enc1:%'`);
    for (const row of r.rows) {
      const w = fromRow(row, this.box);
      await this.pool.query('update txe_webhooks set secret = $2, previous_secret = $3 where id = $1',
        [w.id, this.box.seal(w.secret, w.id), w.previousSecret === null ? null : this.box.seal(w.previousSecret, w.id)]);
    }
    return r.rows.length;
  }

  async insert(w: WebhookRecord): Promise<void> {
    const columns = [...WRITTEN_COLUMNS, 'created_at'];
    await this.pool.query(`insert into txe_webhooks (${columns.join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      [...writtenValues(w, this.box), new Date(w.createdAtMs)]);
  }

  /** False when there is no such webhook (deleted meanwhile). */
  async update(w: WebhookRecord): Promise<boolean> {
    const sets = WRITTEN_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`).join(', ');
    const r = await this.pool.query(`update txe_webhooks set ${sets} where id = $1 and not deleted`, writtenValues(w, this.box));
    return r.rowCount === 1;
  }

  /** Disables a webhook (its receiver answered 410) without touching its other fields. */
  async disable(id: string, reason: string): Promise<void> {
    await this.pool.query('update txe_webhooks set enabled = false, disabled_reason = $2, updated_at = now() where id = $1 and not deleted', [id, reason]);
  }

  /** Marks deleted (the delivery log keeps naming it); its queued events are skipped. */
  async delete(id: string): Promise<void> {
    await this.pool.query('update txe_webhooks set deleted = true, enabled = false, updated_at = now() where id = $1', [id]);
  }

  /**
   * Logs a batch of tries in one statement. A second 'delivered' row for the same event is dropped
   * by the unique index (a redelivery after a crash between the POST and its log row).
   */
  async logDeliveries(rows: DeliveryRecord[]): Promise<void> {
    if (rows.length === 0) return;
    const values: unknown[] = [];
    const tuples = rows.map((d, i) => {
      values.push(d.webhookId, d.eventId, d.eventType, d.block, d.attempt, new Date(d.attemptedAtMs), d.statusCode, d.error.slice(0, 1000), d.durationMs, d.outcome,
        d.nextAttemptAtMs ? new Date(d.nextAttemptAtMs) : null);
      return `(${Array.from({ length: 11 }, (_, k) => `$${i * 11 + k + 1}`).join(', ')})`;
    });
    await this.pool.query(
      `insert into txe_webhook_deliveries (webhook_id, event_id, event_type, block, attempt, attempted_at, status_code, error, duration_ms, outcome, next_attempt_at)
       values ${tuples.join(', ')} on conflict (webhook_id, event_id) where outcome = 'delivered' do nothing`, values);
  }

  /** Which of these (webhook, event) pairs were delivered already: one query for a whole batch. */
  async deliveredAmong(pairs: { webhookId: string; eventId: string }[]): Promise<Set<string>> {
    if (pairs.length === 0) return new Set();
    const r = await this.pool.query<{ webhook_id: string; event_id: string }>(
      `select webhook_id, event_id from txe_webhook_deliveries where outcome = 'delivered' and (webhook_id, event_id) in (select * from unnest($1::text[], $2::text[]))`,
      [pairs.map((p) => p.webhookId), pairs.map((p) => p.eventId)]);
    return new Set(r.rows.map((x) => `${x.webhook_id}/${x.event_id}`));
  }

  /** Newest first; `beforeId` 0 = from the newest. */
  async deliveries(webhookId: string, eventId: string | null, beforeId: number, limit: number): Promise<DeliveryRecord[]> {
    const r = await this.pool.query<{
      id: string; webhook_id: string; event_id: string; event_type: string; block: string; attempt: number; attempted_at: Date;
      status_code: number; error: string; duration_ms: number; outcome: DeliveryOutcome; next_attempt_at: Date | null;
    }>(
      `select * from txe_webhook_deliveries where webhook_id = $1 and ($2::text is null or event_id = $2) and ($3 = 0 or id < $3)
       order by id desc limit $4`, [webhookId, eventId, beforeId, limit]);
    return r.rows.map((d) => ({
      id: Number(d.id), webhookId: d.webhook_id, eventId: d.event_id, eventType: d.event_type, block: Number(d.block), attempt: d.attempt,
      attemptedAtMs: d.attempted_at.getTime(), statusCode: d.status_code, error: d.error, durationMs: d.duration_ms, outcome: d.outcome,
      nextAttemptAtMs: d.next_attempt_at?.getTime() ?? 0,
    }));
  }
}

/** A webhook as it crosses to the delivery thread: structured clone turns Buffers into Uint8Arrays. */
export type TransferableHook = Omit<WebhookRecord, 'accounts'> & { accounts: Uint8Array[] };

export function toTransferable(w: WebhookRecord): TransferableHook {
  return { ...w, accounts: w.accounts.map((a) => new Uint8Array(a)) };
}

export function fromTransferable(w: TransferableHook): WebhookRecord {
  return { ...w, accounts: w.accounts.map((a) => Buffer.from(a)) };
}
