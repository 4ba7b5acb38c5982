/*
 * Reads the block topic back, for start-up and recovery. Blocks are published in transactions
 * (kafka-sink.ts), and each transaction ends with a commit marker that takes an offset of its own,
 * so block N is not at offset N-1: it is at N-1 plus the markers (and aborted records) before it.
 * A reader uses read_committed and knows a block by the number inside its record:
 *
 *   end      the last block: scan a few offsets before the end of the partition (the last two
 *            are the last block and its commit marker), widening the window until a block shows.
 *   blocks   N..M: scan from an estimate of where N is, counted back from the last block (one
 *            offset a block, at most one marker a block), and step further back if the first
 *            block found is past N (aborted records lie between).
 *
 * Every scan checks the topic's own invariant on the way: consecutive records carry consecutive
 * block numbers (a fork such as keys 281, 282, 281 is refused, not replayed).
 *
 * Cost: a scan is a short-lived consumer in a group of its own (kafkajs has no group-less
 * consumer): a group join, ~10-100 ms, plus the records read (~1 MB a full block).
 */

import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, ConsumerCrashEvent, EachMessagePayload, Kafka } from 'kafkajs';
import { decodeBlockRecord, type DecodedBlockRecord } from './block-record.js';

export interface TopicReaderOptions { topic: string; clientId: string; messageBytesMax: number; readTimeoutMs: number }

/** A block record and where it sits. */
export interface TopicBlock { offset: number; record: DecodedBlockRecord }

export const PARTITION = 0;
export const TOPIC_PARTITIONS = 1; // one total order of blocks
const END_SCAN_OFFSETS_MIN = 4; // the last block and its marker, with room for a short abort
const END_SCAN_GROWTH = 8;
const READER_RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000, factor: 0.2, multiplier: 2 };
const READER_SESSION_TIMEOUT_MS = 10_000;
const READER_HEARTBEAT_MS = 1_000;
const READER_MAX_WAIT_MS = 100;

export class TopicReader {
  private readonly readers = new Set<Consumer>();

  constructor(private readonly kafka: Kafka, private readonly admin: Admin, private readonly options: TopicReaderOptions) {}

  async offsets(): Promise<{ low: number; high: number }> {
    const all = await this.admin.fetchTopicOffsets(this.options.topic);
    const p = all.find((o) => o.partition === PARTITION);
    if (all.length !== TOPIC_PARTITIONS || p === undefined) throw new Error(`kafka sink: topic ${this.options.topic} has ${all.length} partitions, not ${TOPIC_PARTITIONS}`);
    return { low: Number(p.low), high: Number(p.high) };
  }

  /** The last block on the topic, null when it holds none. */
  async end(): Promise<TopicBlock | null> {
    const { low, high } = await this.offsets();
    for (let span = END_SCAN_OFFSETS_MIN; ; span *= END_SCAN_GROWTH) {
      const from = Math.max(low, high - span);
      let last: TopicBlock | null = null;
      await this.scan(from, high, (b) => { last = b; return false; });
      if (last !== null || from === low) return last;
    }
  }

  /** Blocks from..to as the topic holds them; `end` is a block on the topic at or after `to`, and its offset. */
  async blocks(from: number, to: number, end: { number: number; offset: number }): Promise<DecodedBlockRecord[]> {
    const { low, high } = await this.offsets();
    const lastNumber = end.number;
    if (to > lastNumber) throw new RangeError(`kafka sink: blocks ${from}..${to} asked, topic ${this.options.topic} ends at block ${lastNumber}`);
    let start = Math.max(low, end.offset - 2 * (lastNumber - from) - 1);
    for (;;) {
      const found: DecodedBlockRecord[] = [];
      let first: number | null = null;
      await this.scan(start, high, ({ record }) => {
        first ??= record.number;
        if (record.number >= from) found.push(record);
        return record.number >= to;
      });
      if (first !== null && first <= from) {
        if (found.length !== to - from + 1 || found[0].number !== from) throw new Error(`kafka sink: topic ${this.options.topic} gave ${found.length} blocks for ${from}..${to}`);
        return found;
      }
      if (start === low) throw new RangeError(`kafka sink: topic ${this.options.topic} holds no block ${from} (it starts at block ${first ?? 'none'})`);
      start = Math.max(low, start - 2 * (end.offset - start + 1));
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.readers].map((r) => r.disconnect()));
  }

  /**
   * Hands the committed block records of offsets [from, to) to `take`, in order, until `take`
   * returns true or the consumer has passed offset to-1. Control records and aborted records are
   * never handed over; kafkajs still reports the offsets they cover (END_BATCH_PROCESS), which is
   * how a scan that ends on a commit marker knows it is done.
   */
  private async scan(from: number, to: number, take: (block: TopicBlock) => boolean): Promise<void> {
    if (from >= to) return;
    const { topic } = this.options;
    const groupId = `${this.options.clientId}.reader.${randomBytes(6).toString('hex')}`;
    const consumer = this.kafka.consumer({
      groupId, allowAutoTopicCreation: false, sessionTimeout: READER_SESSION_TIMEOUT_MS, heartbeatInterval: READER_HEARTBEAT_MS,
      maxWaitTimeInMs: READER_MAX_WAIT_MS, minBytes: 1, maxBytesPerPartition: this.options.messageBytesMax, maxBytes: 4 * this.options.messageBytesMax,
      readUncommitted: false, retry: { ...READER_RETRY, restartOnFailure: async () => false },
    });
    this.readers.add(consumer);
    const scanning = new Scan(from, to, take);
    consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => scanning.finish(new Error(`kafka sink: reader crashed: ${event.payload.error.message}`, { cause: event.payload.error })));
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => scanning.passed(event.payload.firstOffset, event.payload.lastOffset));
    const read = async (): Promise<void> => {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const running = consumer.run({ autoCommit: false, eachMessage: async ({ message }: EachMessagePayload) => scanning.message(Number(message.offset), message.value) });
      consumer.seek({ topic, partition: PARTITION, offset: String(from) }); // run() made the group synchronously
      await running;
      await scanning.done;
    };
    try {
      await withTimeout(read(), this.options.readTimeoutMs, `reading offsets ${from}..${to - 1} of ${topic}`);
    } finally {
      this.readers.delete(consumer);
      // Bounded: a consumer still rejoining a group whose coordinator died can take its time to
      // leave, and the sink waits on this read.
      await withTimeout(consumer.disconnect(), this.options.readTimeoutMs, `closing the reader of ${topic}`).catch(() => undefined);
      await withTimeout(this.admin.deleteGroups([groupId]), this.options.readTimeoutMs, `deleting group ${groupId}`).catch(() => undefined); // an empty group may be gone already
    }
  }
}

/** One scan's progress: the next offset it wants, and the block number the next record must carry. */
class Scan {
  readonly done: Promise<void>;
  private settle!: (error: Error | null) => void;
  private settled = false;
  private nextOffset: number;
  private lastNumber: number | null = null;

  constructor(from: number, private readonly to: number, private readonly take: (block: TopicBlock) => boolean) {
    this.nextOffset = from;
    this.done = new Promise((resolve, reject) => {
      this.settle = (error) => (error === null ? resolve() : reject(error));
    });
    this.done.catch(() => undefined); // a crash after the read gave up must not be an unhandled rejection
  }

  /** A committed record. Offsets below the next one wanted were fetched before the seek took hold. */
  message(offset: number, value: Buffer | null): void {
    if (this.settled || offset < this.nextOffset) return;
    this.nextOffset = offset + 1;
    try {
      if (value === null) throw new Error(`offset ${offset} has no value`);
      const record = decodeBlockRecord(value);
      if (this.lastNumber !== null && record.number !== this.lastNumber + 1) {
        throw new Error(`offset ${offset} holds block ${record.number} after block ${this.lastNumber}: the topic does not hold one history`);
      }
      this.lastNumber = record.number;
      if (this.take({ offset, record }) || this.nextOffset >= this.to) this.finish(null);
    } catch (error) {
      this.finish(error as Error);
    }
  }

  /**
   * The consumer has been through a fetched batch, committed records, markers and aborted records
   * alike (kafkajs's offsets as strings; first null for an empty batch). A batch that starts past
   * the next offset wanted would leave a gap unseen, so it does not count.
   */
  passed(firstText: string | null, lastText: string): void {
    if (this.settled || firstText === null || Number(firstText) > this.nextOffset) return;
    this.nextOffset = Math.max(this.nextOffset, Number(lastText) + 1);
    if (this.nextOffset >= this.to) this.finish(null);
  }

  finish(error: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(error);
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`kafka sink: ${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
