/*
 * Webhooks, the engine's side: the WebhookService's operations on the webhook table (PostgreSQL
 * first, then memory), and the delivery thread (workers/webhook-delivery.ts, engine/services/webhooks/
 * delivery.ts) that routes events through Kafka and POSTs them. Every change to a webhook is sent
 * to the thread, and the call answers once the thread has it, so a webhook created here gets
 * every event of the blocks after its fromBlock.
 */

import { Worker } from 'node:worker_threads';
import type pg from 'pg';
import type { EngineConfig } from '../../config.js';
import type { Pipeline } from '../../pipeline.js';
import { pgPool } from '../../stages/commit/pg/client.js';
import { distFile } from '../../paths.js';
import { PUBLIC_KEY_BYTES } from '../../core/record.js';
import { EVENT_TYPES, type EventType } from './events.js';
import { generateWebhookSecret } from './signature.js';
import { WebhookTargets } from './targets.js';
import { SecretBox } from './secret-box.js';
import { WebhookStore, newWebhookId, toTransferable, type DeliveryRecord, type TransferableHook, type WebhookRecord } from './store.js';
import type { Log } from './delivery.js';

export class WebhookError extends Error {
  constructor(readonly code: 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'RESOURCE_EXHAUSTED', message: string) {
    super(message);
  }
}

export interface WebhookInput { url: string; eventTypes: EventType[]; accounts: Buffer[]; description: string; enabled: boolean }

const ACCOUNTS_PER_WEBHOOK_MAX = 1000;
const DESCRIPTION_CHARS_MAX = 1000;
const URL_CHARS_MAX = 2048;
const THREAD_START_TIMEOUT_MS = 60_000;
const THREAD_ACK_TIMEOUT_MS = 10_000;
const RESTART_DELAY_MS_MIN = 1000;
const RESTART_DELAY_MS_MAX = 60_000;

type ThreadMessage =
  | { op: 'ready' } | { op: 'failed'; error: string } | { op: 'ack'; request: number }
  | { op: 'log'; level: 'info' | 'warn'; message: string; fields?: Record<string, unknown> } | { op: 'disabled'; id: string; reason: string; atMs: number }
  | { op: 'counts'; routed: number; deliveries: Record<string, number> };

export class Webhooks {
  private readonly hooks = new Map<string, WebhookRecord>();
  private readonly acks = new Map<number, () => void>();
  private nextRequest = 1;
  private thread: Worker | null = null;
  private ready = false; // the thread has loaded the webhooks and answers changes
  private closing = false;
  private restartDelayMs = RESTART_DELAY_MS_MIN;
  private readonly targets: WebhookTargets;

  private constructor(private readonly pipeline: Pipeline, private readonly config: EngineConfig, private readonly pool: pg.Pool,
    private readonly store: WebhookStore, private readonly log: Log) {
    this.targets = new WebhookTargets(config.webhookTargetsAllowed);
  }

  static async open(pipeline: Pipeline, config: EngineConfig, log: Log = () => undefined): Promise<Webhooks> {
    const pool = pgPool(config.pgUrl, { connectTimeoutMs: config.sinkConnectTimeoutMs, statementTimeoutMs: config.sinkStatementTimeoutMs, name: 'txe-webhooks', max: 2 });
    if (config.webhookSecretsKey === '') {
      await pool.end();
      throw new Error('webhooks keep their signing secrets sealed at rest and need a key: run with a keys file from `txe keygen` (its secretsKey), set TXE_WEBHOOK_SECRETS_KEY or webhookSecretsKey (64 hex characters), or set webhooks: false');
    }
    const webhooks = new Webhooks(pipeline, config, pool, new WebhookStore(pool, new SecretBox(config.webhookSecretsKey)), log);
    try {
      const sealed = await webhooks.store.sealPlainSecrets();
      if (sealed > 0) log('info', 'webhook secrets stored in plain text were sealed', { webhooks: sealed });
      for (const h of await webhooks.store.all()) webhooks.hooks.set(h.id, h);
      await webhooks.spawn();
    } catch (error) {
      await webhooks.close();
      throw error;
    }
    return webhooks;
  }

  /**
   * Starts the delivery thread and resolves once it has its topics, webhooks and consumers. A
   * thread that dies after that is started again, with backoff; the webhook table and the delivery
   * log are in PostgreSQL and the queues in Kafka, so it goes on where the last one stopped.
   */
  private spawn(): Promise<void> {
    const thread = new Worker(distFile('workers/webhook-delivery.js'), { workerData: { config: this.config }, execArgv: ['--no-experimental-require-module'] });
    this.thread = thread;
    this.ready = false;
    return new Promise((resolve, reject) => {
      let started = false;
      const timer = setTimeout(() => { void thread.terminate(); reject(new Error(`webhook delivery thread did not start within ${THREAD_START_TIMEOUT_MS} ms`)); }, THREAD_START_TIMEOUT_MS);
      thread.on('message', (m: ThreadMessage) => {
        if (m.op === 'ready') {
          clearTimeout(timer);
          started = true;
          this.ready = true;
          this.restartDelayMs = RESTART_DELAY_MS_MIN;
          // Changes made while it started, deletions included.
          thread.postMessage({ op: 'sync', hooks: [...this.hooks.values()].map(toTransferable), request: 0 });
          resolve();
        } else if (m.op === 'failed') {
          clearTimeout(timer);
          void thread.terminate();
          reject(new Error(`webhooks: ${m.error}`));
        } else if (m.op === 'ack') {
          this.acks.get(m.request)?.();
          this.acks.delete(m.request);
        } else if (m.op === 'log') {
          this.log(m.level, m.message, m.fields);
        } else if (m.op === 'disabled') {
          const current = this.hooks.get(m.id);
          if (current) this.hooks.set(m.id, { ...current, enabled: false, disabledReason: m.reason, updatedAtMs: m.atMs });
        } else if (m.op === 'counts') {
          this.pipeline.metrics.webhookEventsRouted.inc(m.routed);
          for (const [outcome, n] of Object.entries(m.deliveries)) this.pipeline.metrics.webhookDeliveries.inc({ outcome }, n);
        }
      });
      thread.on('error', (error) => this.log('warn', 'webhook delivery thread failed', { error: error.message }));
      thread.on('exit', (code) => {
        clearTimeout(timer);
        this.ready = false;
        // Changes it did not confirm are in PostgreSQL, and the next thread is sent them all.
        for (const ack of this.acks.values()) ack();
        this.acks.clear();
        if (!started) return reject(new Error(`webhook delivery thread exited with ${code} while starting`));
        if (!this.closing) this.restartLater(`exited with ${code}`);
      });
    });
  }

  private restartLater(why: string): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(RESTART_DELAY_MS_MAX, delay * 2);
    this.log('warn', 'webhook delivery thread stopped; starting it again', { why, in_ms: delay });
    setTimeout(() => {
      if (this.closing) return;
      this.spawn().catch((error: Error) => this.restartLater(error.message));
    }, delay).unref();
  }

  /**
   * Sends a change to the delivery thread and waits until it has applied it. While the thread is
   * (re)starting there is nothing to wait for: it reads the table from PostgreSQL and is sent every
   * webhook again once it is ready.
   */
  private tell(message: { op: 'put'; hook: TransferableHook } | { op: 'drop'; id: string } | { op: 'close' }): Promise<void> {
    const thread = this.thread;
    if (!this.ready || thread === null) return Promise.resolve();
    const request = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.acks.delete(request); reject(new Error('webhook delivery thread did not answer')); }, THREAD_ACK_TIMEOUT_MS);
      this.acks.set(request, () => { clearTimeout(timer); resolve(); });
      thread.postMessage({ ...message, request });
    });
  }

  // --- management (WebhookService) ----------------------------------------------------------------

  private async putHook(hook: WebhookRecord): Promise<void> {
    this.hooks.set(hook.id, hook);
    await this.tell({ op: 'put', hook: toTransferable(hook) });
  }

  private async dropHook(id: string): Promise<void> {
    this.hooks.delete(id);
    await this.tell({ op: 'drop', id });
  }

  list(): WebhookRecord[] {
    return [...this.hooks.values()];
  }

  get(id: string): WebhookRecord {
    const h = this.hooks.get(id);
    if (!h) throw new WebhookError('NOT_FOUND', `no webhook ${id}`);
    return h;
  }

  /** Writes a changed webhook; a webhook deleted meanwhile is NOT_FOUND, and stays deleted. */
  private async save(next: WebhookRecord): Promise<WebhookRecord> {
    if (!(await this.store.update(next))) {
      await this.dropHook(next.id);
      throw new WebhookError('NOT_FOUND', `no webhook ${next.id}`);
    }
    await this.putHook(next);
    return next;
  }

  /** Events start after the last durable block: a sequenced block may yet be lost in a crash. */
  private get currentBlock(): number {
    return this.pipeline.lastDurableBlock;
  }

  async create(input: WebhookInput): Promise<WebhookRecord> {
    checkInput(input);
    await this.checkTarget(input.url);
    if (this.hooks.size >= this.config.webhooksMax) throw new WebhookError('RESOURCE_EXHAUSTED', `${this.hooks.size} webhooks exist (max webhooksMax ${this.config.webhooksMax}); delete one first`);
    const now = Date.now();
    const hook: WebhookRecord = {
      id: newWebhookId(), ...input, disabledReason: '', secret: generateWebhookSecret(), previousSecret: null, previousSecretExpiresAtMs: 0,
      secretRotatedAtMs: now, fromBlock: this.currentBlock, createdAtMs: now, updatedAtMs: now,
    };
    await this.store.insert(hook);
    await this.putHook(hook); // the router reads again whatever it passed since fromBlock
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
    if (next.enabled && !hook.enabled) Object.assign(next, { disabledReason: '', fromBlock: this.currentBlock }); // no events of the disabled time
    checkInput(next);
    if (has('url')) await this.checkTarget(next.url);
    return this.save(next);
  }

  /** Refuses a URL whose host resolves to this machine's or a private network (targets.ts). */
  private async checkTarget(url: string): Promise<void> {
    const refused = await this.targets.refusal(new URL(url));
    if (refused !== null) throw new WebhookError('INVALID_ARGUMENT', `url ${url}: ${refused}`);
  }

  async delete(id: string): Promise<void> {
    this.get(id);
    await this.store.delete(id);
    await this.dropHook(id);
  }

  /** A new secret; the old one stays valid (deliveries are signed with both) for `graceMs`. */
  async rotateSecret(id: string, graceMs: number): Promise<WebhookRecord> {
    const hook = this.get(id);
    const now = Date.now();
    const grace = graceMs || this.config.webhookSecretGraceMs;
    const next: WebhookRecord = { ...hook, previousSecret: hook.secret, previousSecretExpiresAtMs: now + grace, secret: generateWebhookSecret(), secretRotatedAtMs: now, updatedAtMs: now };
    return this.save(next);
  }

  deliveries(id: string, eventId: string | null, beforeId: number, limit: number): Promise<DeliveryRecord[]> {
    return this.store.deliveries(id, eventId, beforeId, limit);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.tell({ op: 'close' }).catch(() => undefined);
    await this.thread?.terminate();
    await this.pool.end().catch(() => undefined);
  }
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
