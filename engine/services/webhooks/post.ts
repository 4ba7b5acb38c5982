/*
 * One delivery try: POST the event body with the Standard Webhooks headers, bounded by a timeout,
 * and what to do next. The retry delay doubles per try from webhookBackoffMs, with ±20% jitter so
 * that receivers coming back are not hit by every queued event at the same instant, capped at
 * webhookBackoffMaxMs. A receiver's Retry-After (seconds or an HTTP date, on 429 or 503) replaces
 * the computed delay when it is longer, within the same cap.
 */

import { webhookHeaders } from './signature.js';

export interface PostResult {
  statusCode: number; // 0 when no answer (connection error, timeout)
  error: string;
  durationMs: number;
  retryAfterMs: number | null;
}

const BODY_READ_BYTES_MAX = 1024; // of a receiver's answer, kept for the delivery log
const JITTER = 0.2;

export async function postEvent(url: string, secrets: string[], eventId: string, body: string, timeoutMs: number): Promise<PostResult> {
  const started = Date.now();
  const headers = { 'content-type': 'application/json', 'user-agent': 'txe-webhooks/1', ...webhookHeaders(secrets, eventId, Math.floor(started / 1000), body) };
  try {
    const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    let text = ''; // an error body's first KB, for the delivery log; a success body is not read
    if (response.ok) await response.body?.cancel().catch(() => undefined);
    else text = await readAtMost(response, BODY_READ_BYTES_MAX);
    return {
      statusCode: response.status, durationMs: Date.now() - started,
      error: response.ok ? '' : `HTTP ${response.status}${text ? `: ${text}` : ''}`,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), Date.now()),
    };
  } catch (error) {
    const e = error as Error & { cause?: Error };
    const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${e.message}${e.cause ? ` (${e.cause.message})` : ''}`;
    return { statusCode: 0, error: reason, durationMs: Date.now() - started, retryAfterMs: null };
  }
}

/** The first `bytes` of a response body as text; the rest is never read. */
async function readAtMost(response: Response, bytes: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < bytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // a receiver that breaks the connection mid-body: keep what came
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, bytes).toString('utf8');
}

/** Retry-After as milliseconds from now: delta-seconds or an HTTP date; null when absent or bad. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

export interface BackoffOptions { backoffMs: number; backoffMaxMs: number }

/** The wait before try `attempt + 1`, after try `attempt` (1-based) failed. */
export function retryDelayMs(attempt: number, o: BackoffOptions, retryAfterMs: number | null, random = Math.random): number {
  const exponential = Math.min(o.backoffMaxMs, o.backoffMs * 2 ** (attempt - 1));
  const jittered = exponential * (1 - JITTER + 2 * JITTER * random());
  return Math.round(Math.min(o.backoffMaxMs, Math.max(jittered, retryAfterMs ?? 0)));
}
