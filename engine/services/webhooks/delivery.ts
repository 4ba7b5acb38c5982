/*
 * Webhook delivery, on a thread of its own (workers/webhook-delivery.ts), so that reading blocks,
 * building events and POSTing never take a turn of the engine's event loop:
 *
 *   txe.blocks ──router (group <prefix>.router)──> <prefix>.events   key = webhook id
 *   <prefix>.events ──delivery (group <prefix>.delivery)──> POST ──2xx──> log delivered
 *                                                              ├─410──> log gone, disable the webhook
 *                                                              ├─else, tries left──> <prefix>.retries
 *                                                              └─else──> <prefix>.dead-letters
 *   <prefix>.retries ──retry (group <prefix>.retry)──> wait until due ──> POST (same outcomes)
 *
 * - The router reads blocks from Kafka, never from the pipeline: the transaction path does not
 *   wait for it, and a webhook only sees blocks that are in Kafka already. It is paused while no
 *   webhook is enabled, and skips blocks nobody wants by their key, without decoding them.
 * - A webhook's events start after block fromBlock (the engine's last block when it was created).
 *   Each webhook remembers the last block routed for it; when one arrives whose fromBlock the
 *   router has passed already, the router seeks back, and the blocks it reads again are routed
 *   only to the webhooks that have not had them.
 * - Events of one webhook share a key, so one partition: in block order while the receiver is
 *   healthy. A failed event waits in the retry topic while later ones go on, so order holds only
 *   for a healthy receiver.
 * - A failing receiver costs one try per backoff period: after a failed try, the webhook's other
 *   events are parked in the retry topic until the backoff ends, without a POST. A slow receiver
 *   that does answer holds its partition's turn for webhookPartitionTurnMsMax plus one answer at most;
 *   webhooks in the same partition (about 1/webhookEventTopicPartitions of them) wait behind it.
 * - A retry that is not due pauses its partition until it is, so the consumer goes on fetching
 *   the others; retries of one partition are handled in order, so one with a long Retry-After
 *   holds up those behind it in its partition.
 * - Each fetched batch costs two PostgreSQL statements: one asks which of its events were
 *   delivered already (a redelivery after a crash between a POST and the offset commit), one logs
 *   every try. Offsets are resolved only after the log rows are written.
 * - Bounded: one batch per partition in flight, webhookConcurrency partitions at once; lag waits in
 *   Kafka, not in memory. Tries are bounded by webhookAttemptsMax. The router stays at most
 *   webhookEventsQueuedMax events ahead of delivery: a subscription that matches more events than its
 *   receiver takes leaves its backlog in txe.blocks (128 B a transaction), not as events (~700 B
 *   each), and the router's CPU follows the delivery rate instead of the transaction rate.
 */

import kafkajs, { type Admin, type Consumer, type EachBatchPayload, type Kafka as KafkaClient, type Producer } from 'kafkajs';
import type pg from 'pg';
import { minInsyncReplicas, webhookTopicPrefix, type EngineConfig } from '../../config.js';
import { pgPool } from '../../stages/commit/pg/client.js';
import { decodeBlockRecord } from '../../stages/commit/kafka/block-record.js';
import { blockEvents, type EventType, type WebhookEvent } from './events.js';
import { postEvent, retryDelayMs, type PostResult } from './post.js';
import { WebhookTargets } from './targets.js';
import { SecretBox } from './secret-box.js';
import { WebhookStore, type DeliveryRecord, type WebhookRecord } from './store.js';

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

export type Log = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;

// Every limit here is in EngineConfig (engine/config.ts, webhook*), with its default and reason:
// topic partitions, produce and log batch sizes, the router's backpressure, and the consumers'
// session, heartbeat, fetch, commit, turn and retry-pause times. A consumer's session must outlast
// one POST (webhookTimeoutMs), since it heartbeats after each. kafkajs fetches again only when
// every partition of the last fetch is done, so one partition may hold the others for
// webhookPartitionTurnMsMax at most (plus one POST).

export function webhookTopics(config: EngineConfig) {
  const p = webhookTopicPrefix(config);
  return { events: `${p}.events`, retries: `${p}.retries`, deadLetters: `${p}.dead-letters`, groups: { router: `${p}.router`, delivery: `${p}.delivery`, retry: `${p}.retry` } };
}

/** The secrets a delivery is signed with now: the current one, and the previous one in its grace. */
export function activeSecrets(hook: WebhookRecord, nowMs: number): string[] {
  return hook.previousSecret !== null && nowMs < hook.previousSecretExpiresAtMs ? [hook.secret, hook.previousSecret] : [hook.secret];
}

// Recent blocks whose offsets the router keeps: ~70 s at full rate (122 blocks a second), ~2 MB.
const ROUTER_OFFSETS_KEPT_MAX = 8192;

export class WebhookDelivery {
  private readonly hooks = new Map<string, WebhookRecord>();
  private readonly routedThrough = new Map<string, number>(); // webhook id -> last block routed for it
  private readonly cooling = new Map<string, number>(); // webhook id -> end of its backoff after a failed try
  private readonly consumers: Consumer[] = [];
  private router: Consumer | null = null;
  private lastRouted = 0; // the last block the router handled
  // Where the router found recent blocks (block number -> offset), so it can go back to exactly the
  // block after a new webhook's fromBlock: the topic's commit markers make offsets run ahead of
  // block numbers, and a seek by number alone lands up to a third of the history too early.
  private readonly offsetOfBlock = new Map<number, string>();
  private eventsRouted = 0; // counters of this process, for the router's backpressure
  private eventsHandled = 0;
  /** Counts since the last takeCounts(), for the engine's Prometheus counters. */
  private counts = { routed: 0, deliveries: {} as Record<string, number> };
  private stopped = false;
  private readonly topics: ReturnType<typeof webhookTopics>;
  private readonly store: WebhookStore;
  private readonly pool: pg.Pool;
  private readonly kafka: KafkaClient;
  private readonly producer: Producer;

  private readonly targets: WebhookTargets;

  constructor(private readonly config: EngineConfig, private readonly log: Log, private readonly onDisabled: (hook: WebhookRecord) => void) {
    this.targets = new WebhookTargets(config.webhookTargetsAllowed);
    this.topics = webhookTopics(config);
    this.pool = pgPool(config.pgUrl, { connectTimeoutMs: config.sinkConnectTimeoutMs, statementTimeoutMs: config.sinkStatementTimeoutMs, name: 'txe-webhook-delivery', max: config.webhookPgConnectionsMax });
    this.store = new WebhookStore(this.pool, new SecretBox(config.webhookSecretsKey));
    this.kafka = new Kafka({
      clientId: 'txe-webhooks', brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING,
      connectionTimeout: config.sinkConnectTimeoutMs, requestTimeout: config.sinkStatementTimeoutMs,
    });
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  }

  /**
   * Creates the topics, loads the webhooks and starts the three consumer groups without waiting
   * for them to join: after a crash a group waits for the dead process's members to time out, and
   * nothing else should wait with it. Events wait in Kafka meanwhile.
   */
  async open(): Promise<void> {
    await this.createTopics();
    await this.producer.connect();
    for (const h of await this.store.all()) this.hooks.set(h.id, h);
    const { groups } = this.topics;
    this.router = await this.consume(groups.router, this.config.kafkaTopic, 1, (p) => this.routeBatch(p));
    this.syncRouter();
    await this.consume(groups.delivery, this.topics.events, this.config.webhookConcurrency, (p) => this.deliverBatch(p, false));
    await this.consume(groups.retry, this.topics.retries, this.config.webhookConcurrency, (p) => this.deliverBatch(p, true));
  }

  private async createTopics(): Promise<void> {
    const admin: Admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const wanted = [
        { topic: this.topics.events, numPartitions: this.config.webhookEventTopicPartitions },
        { topic: this.topics.retries, numPartitions: this.config.webhookEventTopicPartitions },
        { topic: this.topics.deadLetters, numPartitions: this.config.webhookDeadLetterTopicPartitions },
      ].filter((t) => !existing.has(t.topic));
      // Replicated as the blocks topic is (kafkaReplicationFactor): with one replica, a node's death
      // left these partitions without a leader, and the engine's Kafka clients, which fetch metadata
      // for every topic, failed with LEADER_NOT_AVAILABLE until the node came back, the sink's too.
      const replicationFactor = this.config.kafkaReplicationFactor;
      const configEntries = [{ name: 'min.insync.replicas', value: String(minInsyncReplicas(replicationFactor)) }];
      if (wanted.length > 0) await admin.createTopics({ topics: wanted.map((t) => ({ ...t, replicationFactor, configEntries })), waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
  }

  private async consume(groupId: string, topic: string, concurrency: number, each: (p: EachBatchPayload) => Promise<void>): Promise<Consumer> {
    const c = this.config;
    const consumer = this.kafka.consumer({
      groupId, sessionTimeout: c.webhookConsumerSessionTimeoutMs, heartbeatInterval: c.webhookConsumerHeartbeatIntervalMs,
      maxBytesPerPartition: c.webhookFetchBytesPerPartitionMax, maxWaitTimeInMs: c.webhookFetchWaitMsMax,
    });
    this.consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    // kafkajs forgets pauses and pending seeks when it restarts a crashed consumer: apply them again.
    consumer.on(consumer.events.GROUP_JOIN, () => { if (consumer === this.router) this.syncRouter(); });
    void consumer.run({
      partitionsConsumedConcurrently: concurrency,
      eachBatchAutoResolve: false,
      autoCommitInterval: c.webhookAutoCommitIntervalMs,
      eachBatch: async (payload) => {
        try {
          await each(payload);
        } catch (error) {
          if (!this.stopped) this.log('warn', 'webhook consumer: batch not finished, Kafka redelivers the rest', { group: groupId, error: (error as Error).message });
          throw error;
        }
      },
    }).catch((error: Error) => this.log('warn', 'webhook consumer did not start', { group: groupId, error: error.message }));
    return consumer;
  }

  // --- the webhook table, as the engine's thread sends it ---------------------------------------

  put(hook: WebhookRecord): void {
    const before = this.hooks.get(hook.id);
    this.hooks.set(hook.id, hook);
    if (hook.enabled && !before?.enabled) {
      this.routedThrough.set(hook.id, hook.fromBlock);
      const alone = ![...this.hooks.values()].some((h) => h.enabled && h.id !== hook.id);
      // Alone, it decides where the router reads: from its fromBlock, wherever the router was (a
      // first webhook does not scan the whole topic). Otherwise the router goes back only if it
      // passed the fromBlock already, and blocks it reads again go to this webhook alone.
      if (this.router && (alone || this.lastRouted > hook.fromBlock)) this.seekRouter(hook.fromBlock);
    }
    this.syncRouter();
  }

  /** The whole table (after the thread starts): webhooks deleted meanwhile are dropped. */
  sync(hooks: WebhookRecord[]): void {
    const ids = new Set(hooks.map((h) => h.id));
    for (const id of [...this.hooks.keys()]) if (!ids.has(id)) this.drop(id);
    for (const h of hooks) this.put(h);
  }

  private rememberOffset(number: number, offset: string): void {
    this.offsetOfBlock.set(number, offset);
    if (this.offsetOfBlock.size > ROUTER_OFFSETS_KEPT_MAX) this.offsetOfBlock.delete(this.offsetOfBlock.keys().next().value!);
  }

  private seekRouter(afterBlock: number): void {
    try {
      // The offset of block afterBlock + 1 where the router has seen it. Otherwise offset
      // afterBlock: block N sits at offset N-1 plus the commit markers before it (kafka-sink.ts),
      // so that never skips block afterBlock + 1, only reads some blocks again, which are routed to
      // webhooks that have not had them (none, for a new one).
      const offset = this.offsetOfBlock.get(afterBlock + 1) ?? String(afterBlock);
      this.router!.seek({ topic: this.config.kafkaTopic, partition: 0, offset });
    } catch (error) {
      this.log('warn', 'webhook router could not go back for a new webhook; it gets events from the router\'s position on', { error: (error as Error).message });
    }
  }

  drop(id: string): void {
    this.hooks.delete(id);
    this.routedThrough.delete(id);
    this.cooling.delete(id);
    this.syncRouter();
  }

  private syncRouter(): void {
    if (!this.router) return;
    const topics = [{ topic: this.config.kafkaTopic }];
    try {
      if ([...this.hooks.values()].some((h) => h.enabled)) this.router.resume(topics);
      else this.router.pause(topics);
    } catch (error) {
      // Between a consumer crash and kafkajs's restart of it; GROUP_JOIN applies it again.
      this.log('warn', 'webhook router: pause/resume deferred until it rejoins', { error: (error as Error).message });
    }
  }

  // --- routing -----------------------------------------------------------------------------------

  private async routeBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopped) return;
      await this.waitForDelivery(heartbeat);
      if (!isRunning() || isStale() || this.stopped) return; // a seek while it waited: read from there
      const number = Number(message.key!.readBigUInt64BE(0));
      this.rememberOffset(number, message.offset);
      await this.route(number, message.value!);
      resolveOffset(message.offset);
      await heartbeat();
    }
  }

  /** Fans one block's events out to the webhooks that want them and have not had it, in order. */
  private async route(number: number, value: Buffer): Promise<void> {
    this.lastRouted = Math.max(this.lastRouted, number);
    const hooks = [...this.hooks.values()].filter((h) => h.enabled && h.fromBlock < number && (this.routedThrough.get(h.id) ?? 0) < number);
    if (hooks.length === 0) return; // a 1 MB block nobody wants is not decoded
    const anyAccount = hooks.some((h) => h.accounts.length === 0);
    const filter = { types: new Set(hooks.flatMap((h) => h.eventTypes)), accounts: anyAccount ? null : new Set(hooks.flatMap((h) => h.accounts.map((a) => a.toString('latin1')))) };
    const events = blockEvents(decodeBlockRecord(value), filter);
    let messages: { key: string; value: string }[] = [];
    const send = async () => {
      if (messages.length === 0) return;
      await this.producer.send({ topic: this.topics.events, acks: -1, messages });
      this.eventsRouted += messages.length;
      this.counts.routed += messages.length;
      messages = [];
    };
    for (const event of events) {
      for (const h of hooks) {
        if (!wants(h, event)) continue;
        const queued: QueuedEvent = { eventId: event.id, webhookId: h.id, type: event.type, block: event.block, body: event.body, attempt: 1, notBeforeMs: 0 };
        messages.push({ key: h.id, value: JSON.stringify(queued) });
        if (messages.length >= this.config.webhookRouteSendMessagesMax) await send(); // a block x many webhooks is never all in memory
      }
    }
    await send();
    for (const h of hooks) this.routedThrough.set(h.id, number);
  }

  private async waitForDelivery(heartbeat: () => Promise<void>): Promise<void> {
    // Delivery of our events may have moved to another process (a rebalance): never wait for it longer.
    const deadline = Date.now() + this.config.webhookBackpressureWaitMsMax;
    while (this.eventsRouted - this.eventsHandled > this.config.webhookEventsQueuedMax && Date.now() < deadline && !this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, this.config.webhookBackpressurePollMs));
      await heartbeat();
    }
  }

  // --- delivery ----------------------------------------------------------------------------------

  private async deliverBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause, commitOffsetsIfNecessary }: EachBatchPayload, retries: boolean): Promise<void> {
    const queued = batch.messages.map((m) => JSON.parse(m.value!.toString()) as QueuedEvent);
    const done = await this.store.deliveredAmong(queued);
    const log: DeliveryRecord[] = [];
    let resolvable: string | null = null;
    const flush = async () => {
      const rows = log.splice(0);
      await this.store.logDeliveries(rows);
      for (const r of rows) this.counts.deliveries[r.outcome] = (this.counts.deliveries[r.outcome] ?? 0) + 1;
      if (resolvable !== null) resolveOffset(resolvable);
      await commitOffsetsIfNecessary();
    };
    const turnEndsAtMs = Date.now() + this.config.webhookPartitionTurnMsMax;
    try {
      for (let i = 0; i < queued.length; i++) {
        if (!isRunning() || isStale() || this.stopped) break;
        if (i > 0 && Date.now() > turnEndsAtMs) break; // the rest is fetched again, after the other partitions had a turn
        const q = queued[i];
        const waitMs = q.notBeforeMs - Date.now();
        if (retries && waitMs > 0) {
          // Not due: look again later, and let the consumer fetch the other partitions meanwhile.
          const resume = pause();
          setTimeout(() => { try { resume(); } catch { /* the consumer stopped */ } }, Math.min(waitMs, this.config.webhookRetryPauseMsMax)).unref();
          break;
        }
        if (!done.has(`${q.webhookId}/${q.eventId}`)) await this.deliver(q, log);
        if (!retries) this.eventsHandled++;
        resolvable = batch.messages[i].offset;
        if (log.length >= this.config.webhookLogRowsPerFlushMax) await flush();
        await heartbeat(); // one POST can take webhookTimeoutMs: the session must hear from us between them
      }
    } finally {
      await flush(); // tries made are logged and resolved even when the batch stops early
    }
  }

  /**
   * One try of one event; the try's log row goes to `log`, written before its offset resolves.
   * While a webhook is backing off after a failed try, its other events are parked in the retry
   * topic, due when the backoff ends, without a POST: a receiver that fails or times out costs
   * one try per backoff period, not one per queued event, and holds up no other webhook.
   */
  private async deliver(q: QueuedEvent, log: DeliveryRecord[]): Promise<void> {
    const hook = this.hooks.get(q.webhookId);
    if (!hook) return; // deleted: its queued events are dropped
    const coolingUntil = this.cooling.get(q.webhookId) ?? 0;
    if (hook.enabled && Date.now() < coolingUntil) {
      await this.producer.send({ topic: this.topics.retries, acks: -1, messages: [{ key: q.webhookId, value: JSON.stringify({ ...q, notBeforeMs: coolingUntil }) }] });
      return;
    }
    const record: DeliveryRecord = {
      webhookId: q.webhookId, eventId: q.eventId, eventType: q.type, block: q.block, attempt: q.attempt, attemptedAtMs: Date.now(),
      statusCode: 0, error: '', durationMs: 0, outcome: 'skipped', nextAttemptAtMs: 0,
    };
    if (!hook.enabled) {
      log.push({ ...record, error: `webhook disabled${hook.disabledReason ? `: ${hook.disabledReason}` : ''}` });
      return;
    }
    // The target is checked again before each try: its name may resolve elsewhere since creation.
    const refused = await this.targets.refusal(new URL(hook.url));
    const r: PostResult = refused !== null
      ? { statusCode: 0, error: `not sent: ${refused}`, durationMs: 0, retryAfterMs: null }
      : await postEvent(hook.url, activeSecrets(hook, record.attemptedAtMs), q.eventId, q.body, this.config.webhookTimeoutMs);
    Object.assign(record, { statusCode: r.statusCode, error: r.error, durationMs: r.durationMs });
    if (r.statusCode >= 200 && r.statusCode < 300) {
      this.cooling.delete(q.webhookId);
      log.push({ ...record, outcome: 'delivered' });
    } else if (r.statusCode === 410) {
      log.push({ ...record, outcome: 'gone' });
      await this.disable(hook, `the receiver answered 410 Gone at ${new Date(record.attemptedAtMs).toISOString()}`);
    } else if (q.attempt < this.config.webhookAttemptsMax) {
      const next = record.attemptedAtMs + retryDelayMs(q.attempt, { backoffMs: this.config.webhookBackoffMs, backoffMaxMs: this.config.webhookBackoffMaxMs }, r.retryAfterMs);
      log.push({ ...record, outcome: 'retrying', nextAttemptAtMs: next });
      this.cooling.set(q.webhookId, next);
      await this.producer.send({ topic: this.topics.retries, acks: -1, messages: [{ key: q.webhookId, value: JSON.stringify({ ...q, attempt: q.attempt + 1, notBeforeMs: next }) }] });
    } else {
      log.push({ ...record, outcome: 'dead_lettered' });
      const dead = { ...q, lastStatusCode: r.statusCode, lastError: r.error, deadLetteredAtMs: Date.now() };
      await this.producer.send({ topic: this.topics.deadLetters, acks: -1, messages: [{ key: q.webhookId, value: JSON.stringify(dead) }] });
      this.log('warn', 'webhook event dead-lettered', { webhook: q.webhookId, event: q.eventId, attempts: q.attempt, error: r.error });
    }
  }

  private async disable(hook: WebhookRecord, reason: string): Promise<void> {
    const next = { ...hook, enabled: false, disabledReason: reason, updatedAtMs: Date.now() };
    await this.store.disable(hook.id, reason); // only these fields: a concurrent change from the engine stays
    this.hooks.set(hook.id, next);
    this.syncRouter();
    this.onDisabled(next);
    this.log('warn', 'webhook disabled', { webhook: hook.id, reason });
  }

  takeCounts(): { routed: number; deliveries: Record<string, number> } {
    const c = this.counts;
    this.counts = { routed: 0, deliveries: {} };
    return c;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.consumers.map((c) => c.disconnect().catch(() => undefined)));
    await this.producer.disconnect().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}

function wants(hook: WebhookRecord, event: WebhookEvent): boolean {
  if (!hook.eventTypes.includes(event.type)) return false;
  return hook.accounts.length === 0 || hook.accounts.some((a) => a.equals(event.sender) || a.equals(event.recipient));
}
