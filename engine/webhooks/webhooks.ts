/*
 * Webhook delivery: events derived from committed blocks, queued through Kafka, POSTed signed,
 * retried, dead-lettered, and every try logged in PostgreSQL.
 *
 *   txe.blocks ──router (group <prefix>.router)──> <prefix>.events   key = webhook id
 *   <prefix>.events ──delivery (group <prefix>.delivery)──> POST ──2xx──> log delivered
 *                                                              ├─410──> log gone, disable the webhook
 *                                                              ├─else, tries left──> <prefix>.retries
 *                                                              └─else──> <prefix>.dead-letters
 *   <prefix>.retries ──retry (group <prefix>.retry)──> wait until due ──> POST (same outcomes)
 *
 * Why this shape:
 * - The router reads blocks from Kafka, never from the pipeline: the transaction path does not
 *   wait for it, and a webhook sees only blocks that are durable (in Kafka) already.
 * - Events of one webhook share a key, so one partition: in block order while the receiver is
 *   healthy. A failed event waits in the retry topic while later ones go on (so order holds only
 *   for a healthy receiver), and a slow receiver holds up only its own partition.
 * - At least once through Kafka, exactly once to the receiver in the normal case: before a POST
 *   the delivery log is checked for a 'delivered' row (unique per webhook and event), which covers
 *   a redelivery after a crash between the POST and the offset commit. webhook-id lets a receiver
 *   drop the rarer repeat (a crash between the POST and its log row).
 * - Bounded: the consumers hold one message per partition in flight (webhookConcurrency
 *   partitions at once); lag waits in Kafka, not in memory. Tries are bounded (webhookAttemptsMax).
 * A retry that is not due yet is waited for in its partition (the consumer heartbeats meanwhile):
 * retries of one webhook are in due order anyway, since each waits longer than the one before.
 */

import kafkajs, { type Admin, type Consumer, type EachMessagePayload, type Kafka as KafkaClient, type Producer } from 'kafkajs';
import type pg from 'pg';
import { webhookTopicPrefix, type EngineConfig } from '../config.js';
import type { Pipeline } from '../pipeline.js';
import { pgPool } from '../commit/pg/client.js';
import { decodeBlockRecord } from '../commit/kafka/block-record.js';
import type { StoredBlock } from '../commit/stored-block.js';
import { PUBLIC_KEY_BYTES } from '../wire/record.js';
import { EVENT_TYPES, blockEvents, type EventType, type WebhookEvent } from './events.js';
import { generateWebhookSecret } from './signature.js';
import { postEvent, retryDelayMs } from './post.js';
import { WebhookStore, newWebhookId, type DeliveryRecord, type WebhookRecord } from './store.js';

const { Kafka, logLevel } = kafkajs;

/** One event for one webhook, as it waits in the events and retry topics (JSON). */
export interface QueuedEvent {
  eventId: string;
  webhookId: string;
  type: EventType;
  block: number;
  body: string;
  attempt: number; // the try this message is for, 1-based
  notBeforeMs: number;
}

export class WebhookError extends Error {
  constructor(readonly code: 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'RESOURCE_EXHAUSTED', message: string) {
    super(message);
  }
}

export interface WebhookInput { url: string; eventTypes: EventType[]; accounts: Buffer[]; description: string; enabled: boolean }

const EVENT_PARTITIONS = 8;
const DEAD_LETTER_PARTITIONS = 1;
const ROUTE_SEND_MESSAGES_MAX = 500; // one produce request: ≤ 500 events × ~0.7 KB
const ACCOUNTS_PER_WEBHOOK_MAX = 1000;
const DESCRIPTION_CHARS_MAX = 1000;
const URL_CHARS_MAX = 2048;
const WAIT_SLICE_MS = 1000;
// How long a crashed engine's consumers keep their partitions before the group moves on. A POST
// (webhookTimeoutMs) and a retry's wait (heartbeats every WAIT_SLICE_MS) fit well inside it.
const CONSUMER_SESSION_TIMEOUT_MS = 15_000;
// A fetch returns as soon as a record arrives; this bounds how long a consumer whose partitions
// were just resumed sleeps in an empty fetch first (kafkajs's default is 5 s).
const FETCH_WAIT_MS = 500; // a not-yet-due retry heartbeats this often while it waits

type Log = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;

export class Webhooks {
  private readonly hooks = new Map<string, WebhookRecord>();
  private readonly consumers: Consumer[] = [];
  private router: Consumer | null = null;
  private stopped = false;
  readonly topics: { events: string; retries: string; deadLetters: string };

  private constructor(private readonly pipeline: Pipeline, private readonly config: EngineConfig, private readonly pool: pg.Pool,
    private readonly store: WebhookStore, private readonly kafka: KafkaClient, private readonly producer: Producer, private readonly log: Log) {
    const p = webhookTopicPrefix(config);
    this.topics = { events: `${p}.events`, retries: `${p}.retries`, deadLetters: `${p}.dead-letters` };
  }

  static async open(pipeline: Pipeline, config: EngineConfig, log: Log = () => undefined): Promise<Webhooks> {
    const pool = pgPool(config.pgUrl, { connectTimeoutMs: config.sinkConnectTimeoutMs, statementTimeoutMs: config.sinkStatementTimeoutMs, name: 'txe-webhooks', max: 4 });
    const kafka = new Kafka({
      clientId: 'txe-webhooks', brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING,
      connectionTimeout: config.sinkConnectTimeoutMs, requestTimeout: config.sinkStatementTimeoutMs,
    });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const webhooks = new Webhooks(pipeline, config, pool, new WebhookStore(pool), kafka, producer, log);
    try {
      await webhooks.createTopics();
      await producer.connect();
      for (const h of await webhooks.store.all()) webhooks.hooks.set(h.id, h);
      await webhooks.startConsumers();
    } catch (error) {
      await webhooks.close();
      throw error;
    }
    return webhooks;
  }

  private async createTopics(): Promise<void> {
    const admin: Admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const wanted = [
        { topic: this.topics.events, numPartitions: EVENT_PARTITIONS },
        { topic: this.topics.retries, numPartitions: EVENT_PARTITIONS },
        { topic: this.topics.deadLetters, numPartitions: DEAD_LETTER_PARTITIONS },
      ].filter((t) => !existing.has(t.topic));
      if (wanted.length > 0) await admin.createTopics({ topics: wanted.map((t) => ({ ...t, replicationFactor: 1 })), waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Starts the three consumer groups without waiting for them to join: after a crash, a group waits
   * for the dead process's members to time out (sessionTimeout) before it rebalances, and the
   * engine must not wait with it. Events wait in Kafka meanwhile.
   */
  private async startConsumers(): Promise<void> {
    const p = webhookTopicPrefix(this.config);
    this.router = await this.consume(`${p}.router`, this.config.kafkaTopic, 1, ({ message }) => this.route(message.key!, message.value!));
    this.syncRouter();
    await this.consume(`${p}.delivery`, this.topics.events, this.config.webhookConcurrency, ({ message }) => this.deliver(JSON.parse(message.value!.toString()) as QueuedEvent));
    await this.consume(`${p}.retry`, this.topics.retries, this.config.webhookConcurrency, async ({ message, heartbeat }) => {
      const queued = JSON.parse(message.value!.toString()) as QueuedEvent;
      await this.waitUntil(queued.notBeforeMs, heartbeat);
      await this.deliver(queued);
    });
  }

  private async consume(groupId: string, topic: string, concurrency: number, each: (p: EachMessagePayload) => Promise<void>): Promise<Consumer> {
    const consumer = this.kafka.consumer({ groupId, sessionTimeout: CONSUMER_SESSION_TIMEOUT_MS, heartbeatInterval: 1_000, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTimeInMs: FETCH_WAIT_MS });
    this.consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    void consumer.run({
      partitionsConsumedConcurrently: concurrency,
      eachMessage: async (payload) => {
        if (this.stopped) throw new Error('webhooks stopping'); // not committed: read again at the next start
        try {
          await each(payload);
        } catch (error) {
          this.log('warn', 'webhook consumer: message not processed, Kafka redelivers it', { group: groupId, offset: payload.message.offset, error: (error as Error).message });
          throw error;
        }
      },
    }).catch((error: Error) => this.log('warn', 'webhook consumer did not start', { group: groupId, error: error.message }));
    return consumer;
  }

  /**
   * The router reads every block (~1 MB each at full batches) only while some webhook is enabled:
   * otherwise it is paused and costs the durable path nothing. Resumed, it catches up from its
   * committed offset and skips blocks no webhook wants by their key, without decoding them.
   */
  private syncRouter(): void {
    if (!this.router) return;
    const topics = [{ topic: this.config.kafkaTopic }];
    if ([...this.hooks.values()].some((h) => h.enabled)) this.router.resume(topics);
    else this.router.pause(topics);
  }

  // --- routing ---------------------------------------------------------------------------------

  /** Fans a block's events out to the webhooks that want them, in block order. */
  private async route(key: Buffer, value: Buffer): Promise<void> {
    const number = Number(key.readBigUInt64BE(0));
    const hooks = [...this.hooks.values()].filter((h) => h.enabled && h.fromBlock < number);
    if (hooks.length === 0) return; // decoding a 1 MB block for nobody is skipped
    const block: StoredBlock = decodeBlockRecord(value);
    const events = blockEvents(block, new Set(hooks.flatMap((h) => h.eventTypes)));
    const messages = [];
    for (const event of events) {
      for (const h of hooks) {
        if (!wants(h, event)) continue;
        const queued: QueuedEvent = { eventId: event.id, webhookId: h.id, type: event.type, block: event.block, body: event.body, attempt: 1, notBeforeMs: 0 };
        messages.push({ key: h.id, value: JSON.stringify(queued) });
      }
    }
    for (let i = 0; i < messages.length; i += ROUTE_SEND_MESSAGES_MAX) {
      await this.producer.send({ topic: this.topics.events, acks: -1, messages: messages.slice(i, i + ROUTE_SEND_MESSAGES_MAX) });
    }
  }

  // --- delivery --------------------------------------------------------------------------------

  private async deliver(q: QueuedEvent): Promise<void> {
    const hook = this.hooks.get(q.webhookId);
    if (!hook) return; // deleted: its queued events are dropped
    const record: DeliveryRecord = {
      webhookId: q.webhookId, eventId: q.eventId, eventType: q.type, block: q.block, attempt: q.attempt, attemptedAtMs: Date.now(),
      statusCode: 0, error: '', durationMs: 0, outcome: 'skipped', nextAttemptAtMs: 0,
    };
    if (!hook.enabled) {
      await this.store.logDelivery({ ...record, error: `webhook disabled${hook.disabledReason ? `: ${hook.disabledReason}` : ''}` });
      return;
    }
    if (await this.store.delivered(q.webhookId, q.eventId)) return; // a redelivery after a crash
    const r = await postEvent(hook.url, activeSecrets(hook, record.attemptedAtMs), q.eventId, q.body, this.config.webhookTimeoutMs);
    Object.assign(record, { statusCode: r.statusCode, error: r.error, durationMs: r.durationMs });
    if (r.statusCode >= 200 && r.statusCode < 300) {
      await this.store.logDelivery({ ...record, outcome: 'delivered' });
    } else if (r.statusCode === 410) {
      await this.store.logDelivery({ ...record, outcome: 'gone' });
      await this.disable(hook, `the receiver answered 410 Gone at ${new Date(record.attemptedAtMs).toISOString()}`);
    } else if (q.attempt < this.config.webhookAttemptsMax) {
      const next = record.attemptedAtMs + retryDelayMs(q.attempt, { backoffMs: this.config.webhookBackoffMs, backoffMaxMs: this.config.webhookBackoffMaxMs }, r.retryAfterMs);
      await this.store.logDelivery({ ...record, outcome: 'retrying', nextAttemptAtMs: next });
      await this.producer.send({ topic: this.topics.retries, acks: -1, messages: [{ key: q.webhookId, value: JSON.stringify({ ...q, attempt: q.attempt + 1, notBeforeMs: next }) }] });
    } else {
      await this.store.logDelivery({ ...record, outcome: 'dead_lettered' });
      const dead = { ...q, lastStatusCode: r.statusCode, lastError: r.error, deadLetteredAtMs: Date.now() };
      await this.producer.send({ topic: this.topics.deadLetters, acks: -1, messages: [{ key: q.webhookId, value: JSON.stringify(dead) }] });
      this.log('warn', 'webhook event dead-lettered', { webhook: q.webhookId, event: q.eventId, attempts: q.attempt, error: r.error });
    }
  }

  private async waitUntil(atMs: number, heartbeat: () => Promise<void>): Promise<void> {
    for (let left = atMs - Date.now(); left > 0; left = atMs - Date.now()) {
      if (this.stopped) throw new Error('webhooks stopping');
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, WAIT_SLICE_MS)));
      await heartbeat();
    }
  }

  private async disable(hook: WebhookRecord, reason: string): Promise<void> {
    const next = { ...hook, enabled: false, disabledReason: reason, updatedAtMs: Date.now() };
    await this.store.update(next);
    this.putHook(next);
    this.log('warn', 'webhook disabled', { webhook: hook.id, reason });
  }

  // --- management (WebhookService) ----------------------------------------------------------------

  private putHook(hook: WebhookRecord): void {
    this.hooks.set(hook.id, hook);
    this.syncRouter();
  }

  private dropHook(id: string): void {
    this.hooks.delete(id);
    this.syncRouter();
  }

  list(): WebhookRecord[] {
    return [...this.hooks.values()];
  }

  get(id: string): WebhookRecord {
    const h = this.hooks.get(id);
    if (!h) throw new WebhookError('NOT_FOUND', `no webhook ${id}`);
    return h;
  }

  async create(input: WebhookInput): Promise<WebhookRecord> {
    checkInput(input);
    if (this.hooks.size >= this.config.webhooksMax) throw new WebhookError('RESOURCE_EXHAUSTED', `${this.hooks.size} webhooks exist (max webhooksMax ${this.config.webhooksMax}); delete one first`);
    const now = Date.now();
    const hook: WebhookRecord = {
      id: newWebhookId(), ...input, disabledReason: '', secret: generateWebhookSecret(), previousSecret: null, previousSecretExpiresAtMs: 0,
      secretRotatedAtMs: now, fromBlock: this.pipeline.sequencer.blocksCount, createdAtMs: now, updatedAtMs: now,
    };
    // In the routing table before the first await: no block after fromBlock can be routed without it.
    this.putHook(hook);
    try {
      await this.store.insert(hook);
    } catch (error) {
      this.dropHook(hook.id);
      throw error;
    }
    return hook;
  }

  async update(id: string, mask: string[], input: WebhookInput): Promise<WebhookRecord> {
    const hook = this.get(id);
    const known = new Set(['url', 'event_types', 'accounts', 'enabled', 'description']);
    const unknown = mask.filter((m) => !known.has(m));
    if (mask.length === 0 || unknown.length > 0) throw new WebhookError('INVALID_ARGUMENT', `update_mask must name some of ${[...known].join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
    const has = (f: string) => mask.includes(f);
    const next: WebhookRecord = {
      ...hook, updatedAtMs: Date.now(),
      url: has('url') ? input.url : hook.url, eventTypes: has('event_types') ? input.eventTypes : hook.eventTypes,
      accounts: has('accounts') ? input.accounts : hook.accounts, description: has('description') ? input.description : hook.description,
      enabled: has('enabled') ? input.enabled : hook.enabled,
    };
    if (has('enabled') && input.enabled) next.disabledReason = '';
    checkInput(next);
    await this.store.update(next);
    this.putHook(next);
    return next;
  }

  async delete(id: string): Promise<void> {
    this.get(id);
    await this.store.delete(id);
    this.dropHook(id);
  }

  /** A new secret; the old one stays valid (deliveries are signed with both) for `graceMs`. */
  async rotateSecret(id: string, graceMs: number): Promise<WebhookRecord> {
    const hook = this.get(id);
    const now = Date.now();
    const grace = graceMs || this.config.webhookSecretGraceMs;
    const next: WebhookRecord = { ...hook, previousSecret: hook.secret, previousSecretExpiresAtMs: now + grace, secret: generateWebhookSecret(), secretRotatedAtMs: now, updatedAtMs: now };
    await this.store.update(next);
    this.putHook(next);
    return next;
  }

  deliveries(id: string, eventId: string | null, beforeId: number, limit: number): Promise<DeliveryRecord[]> {
    return this.store.deliveries(id, eventId, beforeId, limit);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.consumers.map((c) => c.disconnect().catch(() => undefined)));
    await this.producer.disconnect().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}

/** The secrets a delivery is signed with now: the current one, and the previous one in its grace. */
export function activeSecrets(hook: WebhookRecord, nowMs: number): string[] {
  return hook.previousSecret !== null && nowMs < hook.previousSecretExpiresAtMs ? [hook.secret, hook.previousSecret] : [hook.secret];
}

function wants(hook: WebhookRecord, event: WebhookEvent): boolean {
  if (!hook.eventTypes.includes(event.type)) return false;
  return hook.accounts.length === 0 || hook.accounts.some((a) => a.equals(event.sender) || a.equals(event.recipient));
}

function checkInput(w: WebhookInput): void {
  let url: URL;
  try {
    url = new URL(w.url);
  } catch {
    throw new WebhookError('INVALID_ARGUMENT', `url ${JSON.stringify(w.url)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new WebhookError('INVALID_ARGUMENT', `url must be http:// or https://, got ${url.protocol}`);
  if (w.url.length > URL_CHARS_MAX) throw new WebhookError('INVALID_ARGUMENT', `url is longer than ${URL_CHARS_MAX} characters`);
  if (w.eventTypes.length === 0) throw new WebhookError('INVALID_ARGUMENT', `event_types must name at least one of ${EVENT_TYPES.join(', ')}`);
  if (w.accounts.length > ACCOUNTS_PER_WEBHOOK_MAX) throw new WebhookError('INVALID_ARGUMENT', `at most ${ACCOUNTS_PER_WEBHOOK_MAX} accounts, got ${w.accounts.length}`);
  const bad = w.accounts.findIndex((a) => a.length !== PUBLIC_KEY_BYTES);
  if (bad >= 0) throw new WebhookError('INVALID_ARGUMENT', `accounts[${bad}] is ${w.accounts[bad].length} bytes, not a ${PUBLIC_KEY_BYTES}-byte account id`);
  if (w.description.length > DESCRIPTION_CHARS_MAX) throw new WebhookError('INVALID_ARGUMENT', `description is longer than ${DESCRIPTION_CHARS_MAX} characters`);
}
