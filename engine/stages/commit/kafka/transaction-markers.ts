/*
 * A read_uncommitted consumer that sees its topic's transaction markers (COMMIT, ABORT), so that it
 * can act on a transaction's records before the transaction is decided and learn its outcome from
 * the log itself, in log order (a validator judging blocks while the leader's transaction commits:
 * engine/cluster/committed-order.ts).
 *
 * kafkajs 2.2.4 (pinned, package.json) decodes the markers but hides them: `batch.messages` leaves
 * out control records, and its runner never calls eachBatch for a fetch that held nothing else
 * (`Batch.isEmpty`, `Batch.isEmptyDueToFiltering`, consumer/runner.js). The decoded records, markers
 * included, are in `batch.messagesWithinOffset`, each with its record batch's producer id and flags
 * (`batchContext`). So, for the topics registered here only, a batch that holds a marker is not
 * empty to the runner: it reaches eachBatch, and logEntries() reads records and markers in offset
 * order. Other topics and consumers are untouched. If kafkajs is not laid out as this expects,
 * install says so and the caller reads committed records only (read_committed), as before.
 *
 * A control record's key is (version int16, type int16): type 0 aborts, 1 commits the producer's
 * open transaction on this partition (Kafka's ControlRecordType).
 */

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const KAFKAJS_BATCH_MODULE = 'kafkajs/src/consumer/batch.js';
const CONTROL_KEY_BYTES = 4;
const CONTROL_TYPE_ABORT = 0;
const CONTROL_TYPE_COMMIT = 1;

/** A record, or a marker that decides the open transaction of `producerId`. */
export type LogEntry =
  | { kind: 'record'; offset: string; value: Buffer; producerId: string; transactional: boolean }
  | { kind: 'commit' | 'abort'; offset: string; producerId: string };

interface DecodedRecord { offset: string; key: Buffer | null; value: Buffer | null; isControlRecord: boolean; batchContext?: { producerId?: string; inTransaction?: boolean } }
interface BatchLike { topic: string; messagesWithinOffset: DecodedRecord[] }
interface BatchClass { prototype: { isEmpty(this: BatchLike): boolean; isEmptyDueToFiltering(this: BatchLike): boolean } }

export type MarkersInstalled = 'installed' | 'not found';

const topics = new Set<string>();
let outcome: MarkersInstalled | null = null;

/** Lets batches of `topic` that hold a transaction marker reach eachBatch; says whether it could. */
export function installTransactionMarkers(topic: string): MarkersInstalled {
  outcome ??= install();
  if (outcome === 'installed') topics.add(topic);
  return outcome;
}

function install(): MarkersInstalled {
  let Batch: BatchClass;
  try {
    Batch = require(KAFKAJS_BATCH_MODULE) as BatchClass;
  } catch {
    return 'not found';
  }
  const proto = Batch?.prototype;
  if (typeof proto?.isEmpty !== 'function' || typeof proto.isEmptyDueToFiltering !== 'function') return 'not found';
  const isEmpty = proto.isEmpty;
  const isEmptyDueToFiltering = proto.isEmptyDueToFiltering;
  proto.isEmpty = function (this: BatchLike) { return isEmpty.call(this) && !holdsMarker(this); };
  proto.isEmptyDueToFiltering = function (this: BatchLike) { return isEmptyDueToFiltering.call(this) && !holdsMarker(this); };
  return 'installed';
}

function holdsMarker(batch: BatchLike): boolean {
  return topics.has(batch.topic) && Array.isArray(batch.messagesWithinOffset) && batch.messagesWithinOffset.some((m) => m.isControlRecord);
}

/** A fetched batch's records and transaction markers, in offset order. */
export function logEntries(batch: unknown): LogEntry[] {
  const within = (batch as BatchLike).messagesWithinOffset;
  if (!Array.isArray(within)) throw new Error('kafkajs batch without messagesWithinOffset: transaction markers cannot be read');
  const out: LogEntry[] = [];
  for (const m of within) {
    const producerId = String(m.batchContext?.producerId ?? '-1');
    if (!m.isControlRecord) {
      out.push({ kind: 'record', offset: m.offset, value: m.value ?? Buffer.alloc(0), producerId, transactional: m.batchContext?.inTransaction === true });
      continue;
    }
    const type = m.key !== null && m.key.length >= CONTROL_KEY_BYTES ? m.key.readInt16BE(2) : -1;
    if (type === CONTROL_TYPE_COMMIT) out.push({ kind: 'commit', offset: m.offset, producerId });
    else if (type === CONTROL_TYPE_ABORT) out.push({ kind: 'abort', offset: m.offset, producerId });
    // Another control type (none is defined for data partitions today): nothing to decide.
  }
  return out;
}
