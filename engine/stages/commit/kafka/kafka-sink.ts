/*
 * The Kafka sink: every committed block as one record on a one-partition topic, in block order,
 * from an idempotent producer with acks=all. Block N sits at offset N-1, so the topic is its own
 * index: its high watermark is the last published block, a repeated write skips what is there, and
 * recovery reads block N at offset N-1 (each read checks the number it finds).
 *
 * Back of the envelope. A full block (8190 txs) is one record of 8190 × 128 B bodies + 8190 B
 * results + 3 × 32 B hashes + ~40 B of header ≈ 1.06 MB (block-record.ts). At 1M TPS that is
 * 1e6 / 8190 ≈ 122 records/s ≈ 129 MB/s of payload (≈ 135 MB/s counted at 1.1 MB a block), i.e.
 * ~1 Gbit/s to the leader and as much again to each follower, and ~11 TB a day on disk. One
 * partition on one broker disk takes a few hundred MB/s, so one total order costs no throughput
 * here; beyond that txe scales on Kafka (DESIGN.md section 5), not on this file. A group of up to
 * blocksPerWriteMax blocks (64 ≈ 68 MB) goes out as sends of at most max.message.bytes (4 MiB: 3
 * full blocks), one after the other: ~41 sends/s at 1M TPS, each well under the 24 ms that allows.
 *
 * Topic settings, set explicitly when the sink creates the topic:
 *   partitions 1              one total order of blocks; offset = number - 1.
 *   replication.factor        options, default 1 (the single-node KRaft of infra/); 3 in production.
 *   min.insync.replicas       max(1, RF - 1): with acks=all a block is acknowledged only once that
 *                             many replicas hold it (1 with RF 1; 2 of 3 in production).
 *   unclean.leader.election   false: an out-of-sync replica never leads and truncates acked blocks.
 *   cleanup.policy delete     keys are unique block numbers; compaction would rewrite for nothing.
 *   retention.ms/bytes -1     the topic is the published history, replayed from its start; at full
 *                             rate that is ~11 TB/day, so a deployment sets a finite retention
 *                             once PostgreSQL (the store recovery reads) holds the history.
 *   max.message.bytes 4 MiB   a full 1.06 MB block with room to spare, far under the broker's
 *                             100 MB socket.request.max.bytes. It bounds a whole record batch,
 *                             i.e. one send, which is why large groups are split (see publish).
 *   message.timestamp.type    CreateTime: the record's timestamp is the block's sequencing time
 *                             (wall clock), kept when blocks are republished from PostgreSQL.
 *   compression.type producer keep what the producer sends (uncompressed, below).
 * Producer settings:
 *   idempotent, maxInFlightRequests 1, acks -1 on every send: the broker drops a retried duplicate
 *   and keeps order; acks=all waits for min.insync.replicas.
 *   compression none: bodies are mostly Ed25519 keys (64 of 128 B) and an opaque memo (32 B), so a
 *   codec saves little, and kafkajs would compress ~130 MB/s on the event loop.
 *   retries 5, 100 ms doubling to at most 2 s: bounded, so a lost broker fails the write (and the
 *   sink stage retries it) instead of hanging the pipeline. kafkajs warns that bounded retries
 *   weaken exactly-once; the sink restores it itself: after a failed send it replaces the
 *   producer (a fresh producer id, so no sequence number of the failed send is reused) and
 *   re-reads the topic end before it sends again, so a send that did land is skipped.
 */

import { randomBytes } from 'node:crypto';
import kafkajs, { type Admin, type Consumer, type ConsumerCrashEvent, type EachMessagePayload, type Kafka as KafkaClient, type Message, type Producer } from 'kafkajs';
import type { InputRing } from '../../../ring/input-ring.js';
import { GENESIS_HASH, type CommittedBlock } from '../../../core/block.js';
import type { Sink } from '../sink.js';
import { blockKey, decodeBlockRecord, encodeBlockRecord, encodeStored, type DecodedBlockRecord } from './block-record.js';

// kafkajs is CommonJS: Node's ESM loader exposes only its default export, so values come from it.
const { CompressionTypes, ConfigResourceTypes, Kafka, Partitioners, logLevel: LogLevel } = kafkajs;
type LogLevel = kafkajs.logLevel;

export interface KafkaSinkOptions {
  brokers: string[];
  topic?: string; // default 'txe.blocks'
  clientId: string;
  connectionTimeoutMs: number;
  requestTimeoutMs: number; // also bounds the broker's wait for acks (half of it, see ackTimeoutMs)
  replicationFactor?: number; // used when the sink creates the topic; default 1
  messageBytesMax?: number; // max.message.bytes when the sink creates the topic; default 4 MiB
  readTimeoutMs?: number; // whole readBlocks / lastBlock call, group join included; default 30 s
  logLevel?: LogLevel; // kafkajs logging; default ERROR
}

export const KAFKA_TOPIC_DEFAULT = 'txe.blocks';
export const MESSAGE_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;
const MESSAGE_BYTES_MIN = 16 * 1024;
const READ_TIMEOUT_MS_DEFAULT = 30_000;
export const READ_BLOCKS_MAX = 256; // one readBlocks call: ≤ 256 × 1.06 MB ≈ 270 MB in memory
const TOPIC_PARTITIONS = 1;
const PARTITION = 0;
// A v2 record batch has a 61 B header; each record adds < 40 B (varint lengths and deltas, the
// 8 B key, attributes). Rounded up, so a send sized with them never exceeds max.message.bytes.
const BATCH_OVERHEAD_BYTES = 1024;
const RECORD_OVERHEAD_BYTES = 64;
const PRODUCER_RETRY = { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000, factor: 0.2, multiplier: 2 };
const READER_RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000, factor: 0.2, multiplier: 2 };
const READER_SESSION_TIMEOUT_MS = 10_000;
const READER_HEARTBEAT_MS = 1_000;
const READER_MAX_WAIT_MS = 100;

/** Lifecycle: open ⇄ failed (a send failed; the next write recovers first), then closed. */
type SinkState = 'open' | 'failed' | 'closed';

/** One block on its way out: header fields to check against the topic, and its record. */
interface Outgoing {
  number: number;
  hash: Buffer;
  prevHash: Buffer;
  sequencedAtMs: number;
  encode: () => Buffer;
}

interface ResolvedOptions extends Required<Omit<KafkaSinkOptions, 'logLevel'>> { logLevel: LogLevel }

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  readonly topic: string;
  private state: SinkState = 'open';
  private failedAtMs = 0; // when the last send failed: its requests were all issued by then
  private writing = false;
  private lastNumber = 0;
  private lastHash: Buffer = GENESIS_HASH;
  private producer: Producer;
  private readonly readers = new Set<Consumer>();

  private constructor(
    private readonly kafka: KafkaClient,
    private readonly admin: Admin,
    private readonly options: ResolvedOptions,
    private readonly messageBytesMax: number, // the topic's max.message.bytes, as the broker reports it
  ) {
    this.topic = options.topic;
    this.producer = this.newProducer();
  }

  /** Creates the topic if missing, connects, and learns the last published block from the topic. */
  static async open(options: KafkaSinkOptions): Promise<KafkaSink> {
    const resolved = resolveOptions(options);
    const kafka = new Kafka({
      clientId: resolved.clientId,
      brokers: resolved.brokers,
      connectionTimeout: resolved.connectionTimeoutMs,
      requestTimeout: resolved.requestTimeoutMs,
      logLevel: resolved.logLevel,
      retry: PRODUCER_RETRY,
    });
    const admin = kafka.admin({ retry: PRODUCER_RETRY });
    await admin.connect();
    let sink: KafkaSink | null = null;
    try {
      const messageBytesMax = await ensureTopic(admin, resolved);
      sink = new KafkaSink(kafka, admin, resolved, messageBytesMax);
      await sink.producer.connect();
      await sink.resync();
      return sink;
    } catch (error) {
      if (sink !== null) await sink.close().catch(() => undefined);
      else await admin.disconnect();
      throw error;
    }
  }

  /** The newest block on the topic as this sink last learned it (0: the topic is empty). */
  get lastPublishedBlock(): number { return this.lastNumber; }
  get lastPublishedHash(): Buffer { return this.lastHash; }
  /** The topic's max.message.bytes as the broker reports it: no record may be larger. */
  get recordBytesMax(): number { return this.messageBytesMax; }

  write(blocks: CommittedBlock[], ring: InputRing): Promise<void> {
    return this.publishOutgoing(blocks.map((b) => ({
      number: b.number, hash: b.hash, prevHash: b.prevHash, sequencedAtMs: b.sequencedAtMs,
      encode: () => encodeBlockRecord(b, ring.copyBodies(b.ringStart, b.txs), b.sequencedAtMs),
    })));
  }

  /** Republishes blocks rebuilt from PostgreSQL (recovery); the same skip and order rules apply. */
  publishRecords(records: DecodedBlockRecord[]): Promise<void> {
    return this.publishOutgoing(records.map((r) => ({
      number: r.number, hash: r.hash, prevHash: r.prevHash, sequencedAtMs: r.sequencedAtMs,
      encode: () => encodeStored(r),
    })));
  }

  /** Re-reads the topic end: the number of the last block on it, 0 when it is empty. */
  async lastBlock(): Promise<number> {
    this.assertState('lastBlock', 'open', 'failed');
    return (await this.readEnd()).number;
  }

  /** Blocks fromNumber..toNumber as the topic holds them (at most READ_BLOCKS_MAX a call). */
  async readBlocks(fromNumber: number, toNumber: number): Promise<DecodedBlockRecord[]> {
    this.assertState('readBlocks', 'open', 'failed');
    if (!Number.isSafeInteger(fromNumber) || !Number.isSafeInteger(toNumber) || fromNumber < 1 || toNumber < fromNumber) {
      throw new RangeError(`kafka sink: readBlocks(${fromNumber}, ${toNumber}) needs 1 <= from <= to`);
    }
    if (toNumber - fromNumber + 1 > READ_BLOCKS_MAX) throw new RangeError(`kafka sink: readBlocks of ${toNumber - fromNumber + 1} blocks exceeds ${READ_BLOCKS_MAX}`);
    const { low, high } = await this.offsets();
    if (toNumber > high || fromNumber - 1 < low) {
      throw new RangeError(`kafka sink: blocks ${fromNumber}..${toNumber} asked, topic ${this.topic} holds ${low + 1}..${high}`);
    }
    return this.readOffsets(fromNumber - 1, toNumber - 1);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const steps = [...this.readers].map((r) => r.disconnect());
    steps.push(this.producer.disconnect(), this.admin.disconnect());
    const failed = (await Promise.allSettled(steps)).filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed.length > 0) throw new Error(`kafka sink: close failed: ${failed.map((f) => String(f.reason)).join('; ')}`);
  }

  private async publishOutgoing(blocks: Outgoing[]): Promise<void> {
    this.assertState('write', 'open', 'failed');
    if (this.writing) throw new Error('kafka sink: write while another write is under way (the sink stage writes one group at a time)');
    this.writing = true;
    try {
      if (this.state === 'failed') await this.recover();
      await this.publish(this.unpublished(blocks));
    } finally {
      this.writing = false;
    }
  }

  /**
   * The blocks not on the topic yet, checked to continue it: numbers contiguous from the last
   * published block, and hashes chained to it (a repeat of the last block must be that block).
   */
  private unpublished(blocks: Outgoing[]): Outgoing[] {
    const repeat = blocks.find((b) => b.number === this.lastNumber);
    if (repeat !== undefined && !repeat.hash.equals(this.lastHash)) {
      throw new Error(`kafka sink: block ${repeat.number} differs from block ${this.lastNumber} on topic ${this.topic}: the topic holds another history`);
    }
    const fresh = blocks.filter((b) => b.number > this.lastNumber);
    let prevHash = this.lastHash;
    fresh.forEach((b, i) => {
      const want = this.lastNumber + 1 + i;
      if (b.number !== want) throw new Error(`kafka sink: block ${b.number} does not follow block ${want - 1} on topic ${this.topic} (expected block ${want})`);
      if (!b.prevHash.equals(prevHash)) throw new Error(`kafka sink: block ${b.number}'s prev_hash does not chain to block ${want - 1} on topic ${this.topic}`);
      prevHash = b.hash;
    });
    return fresh;
  }

  /**
   * Sends the blocks in order, as few sends as max.message.bytes allows: the broker applies that
   * limit to a whole record batch, and kafkajs puts all of one send's records for a partition in
   * one batch. Each send is appended whole or not at all, and advances the last published block.
   */
  private async publish(blocks: Outgoing[]): Promise<void> {
    const sendBytesMax = this.messageBytesMax - BATCH_OVERHEAD_BYTES;
    let chunk: { block: Outgoing; message: Message }[] = [];
    let chunkBytes = 0;
    for (const block of blocks) {
      const value = block.encode();
      const bytes = value.length + RECORD_OVERHEAD_BYTES;
      if (bytes > sendBytesMax) throw new Error(`kafka sink: block ${block.number} is a ${value.length} B record, over topic ${this.topic}'s max.message.bytes ${this.messageBytesMax}`);
      if (chunkBytes + bytes > sendBytesMax) {
        await this.send(chunk);
        chunk = [];
        chunkBytes = 0;
      }
      chunk.push({ block, message: { key: blockKey(block.number), value, partition: PARTITION, timestamp: String(block.sequencedAtMs) } });
      chunkBytes += bytes;
    }
    if (chunk.length > 0) await this.send(chunk);
  }

  private async send(chunk: { block: Outgoing; message: Message }[]): Promise<void> {
    const first = chunk[0].block;
    const last = chunk[chunk.length - 1].block;
    if (first.number !== this.lastNumber + 1) throw new Error(`kafka sink: send of block ${first.number} after block ${this.lastNumber}`);
    let baseOffset: string | undefined;
    try {
      const acks = await this.producer.send({
        topic: this.topic,
        messages: chunk.map((c) => c.message),
        acks: -1,
        timeout: this.ackTimeoutMs,
        compression: CompressionTypes.None,
      });
      if (acks.length !== 1 || acks[0].partition !== PARTITION || acks[0].errorCode !== 0) throw new Error(`unexpected acks ${JSON.stringify(acks)}`);
      baseOffset = acks[0].baseOffset;
    } catch (error) {
      this.state = 'failed';
      this.failedAtMs = Date.now();
      throw new Error(`kafka sink: publishing blocks ${first.number}..${last.number} to ${this.topic} failed: ${(error as Error).message}`, { cause: error });
    }
    if (baseOffset !== String(first.number - 1)) {
      this.state = 'failed';
      throw new Error(`kafka sink: block ${first.number} landed at offset ${baseOffset} of ${this.topic}, expected ${first.number - 1}: the topic's offsets no longer match block numbers`);
    }
    this.lastNumber = last.number;
    this.lastHash = last.hash;
  }

  /**
   * After a failed send: a fresh producer (new producer id), then the topic end as it really is.
   * A request of the old producer may still be queued at the broker and land later; waiting out
   * the request timeout before reading the end keeps it from landing after that read (a duplicate
   * block would break offset = number - 1). The wait counts from the failure, when the failed
   * send's last request had been issued, not from this recovery: a broker that was down longer
   * than the timeout is written to as soon as it is back (it once waited 30 s more after every
   * outage, whatever its length). A transactional producer would fence the old one instead.
   */
  private async recover(): Promise<void> {
    const old = this.producer;
    this.producer = this.newProducer();
    await old.disconnect().catch(() => undefined); // the old session is abandoned either way
    const waitMs = this.failedAtMs + this.options.requestTimeoutMs - Date.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    await this.producer.connect();
    await this.resync();
    this.state = 'open';
  }

  private async resync(): Promise<void> {
    const end = await this.readEnd();
    this.lastNumber = end.number;
    this.lastHash = end.hash;
  }

  /** The last block on the topic, decoded and checked against its offset (number = offset + 1). */
  private async readEnd(): Promise<{ number: number; hash: Buffer }> {
    const { high } = await this.offsets();
    if (high === 0) return { number: 0, hash: GENESIS_HASH };
    const [last] = await this.readOffsets(high - 1, high - 1);
    return { number: last.number, hash: last.hash };
  }

  private async offsets(): Promise<{ low: number; high: number }> {
    const all = await this.admin.fetchTopicOffsets(this.topic);
    const p = all.find((o) => o.partition === PARTITION);
    if (all.length !== TOPIC_PARTITIONS || p === undefined) throw new Error(`kafka sink: topic ${this.topic} has ${all.length} partitions, not ${TOPIC_PARTITIONS}`);
    return { low: Number(p.low), high: Number(p.high) };
  }

  /**
   * Reads the records at offsets first..last with a short-lived consumer in a group of its own
   * (kafkajs has no group-less consumer), seeked to `first`, committing nothing; the group is
   * deleted afterwards. Costs a group join (~10-100 ms), so it serves start-up and recovery only.
   */
  private async readOffsets(first: number, last: number): Promise<DecodedBlockRecord[]> {
    const groupId = `${this.options.clientId}.reader.${randomBytes(6).toString('hex')}`;
    const consumer = this.kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: READER_SESSION_TIMEOUT_MS,
      heartbeatInterval: READER_HEARTBEAT_MS,
      maxWaitTimeInMs: READER_MAX_WAIT_MS,
      minBytes: 1,
      maxBytesPerPartition: this.messageBytesMax,
      maxBytes: 4 * this.messageBytesMax,
      readUncommitted: false,
      retry: { ...READER_RETRY, restartOnFailure: async () => false },
    });
    this.readers.add(consumer);
    const reading = new OffsetRangeReader(first, last);
    consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => reading.fail(event.payload.error));
    const read = async (): Promise<DecodedBlockRecord[]> => {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
      const running = consumer.run({ autoCommit: false, eachMessage: async ({ message }: EachMessagePayload) => reading.take(message.offset, message.value) });
      consumer.seek({ topic: this.topic, partition: PARTITION, offset: String(first) }); // run() made the group synchronously
      await running;
      return reading.done;
    };
    try {
      return await withTimeout(read(), this.options.readTimeoutMs, `reading offsets ${first}..${last} of ${this.topic}`);
    } finally {
      this.readers.delete(consumer);
      await consumer.disconnect();
      await this.admin.deleteGroups([groupId]).catch(() => undefined); // an empty group may be gone already
    }
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: PRODUCER_RETRY,
      createPartitioner: Partitioners.DefaultPartitioner, // unused: every record names partition 0
    });
  }

  /** The broker's wait for acks: half the client's request timeout, so its answer comes back first. */
  private get ackTimeoutMs(): number {
    return Math.max(1, Math.floor(this.options.requestTimeoutMs / 2));
  }

  private assertState(what: string, ...allowed: SinkState[]): void {
    if (!allowed.includes(this.state)) throw new Error(`kafka sink: ${what} while ${this.state}`);
  }
}

/** Collects the decoded records of offsets first..last, in order, checking each block number. */
class OffsetRangeReader {
  readonly records: DecodedBlockRecord[] = [];
  readonly done: Promise<DecodedBlockRecord[]>;
  private settle!: (error: Error | null) => void;
  private settled = false;

  constructor(private readonly first: number, private readonly last: number) {
    this.done = new Promise((resolve, reject) => {
      this.settle = (error) => (error === null ? resolve(this.records) : reject(error));
    });
    this.done.catch(() => undefined); // a crash after the read gave up must not be an unhandled rejection
  }

  take(offsetText: string, value: Buffer | null): void {
    const offset = Number(offsetText);
    const want = this.first + this.records.length;
    if (this.settled || offset < want) return; // fetched before the seek took hold, or after the end
    try {
      if (offset !== want) throw new Error(`offset ${offset} arrived where ${want} was expected`);
      if (value === null) throw new Error(`offset ${offset} has no value`);
      const record = decodeBlockRecord(value);
      if (record.number !== offset + 1) throw new Error(`offset ${offset} holds block ${record.number}, not ${offset + 1}: the topic's offsets no longer match block numbers`);
      this.records.push(record);
      if (offset === this.last) this.finish(null);
    } catch (error) {
      this.finish(error as Error);
    }
  }

  fail(error: Error): void {
    this.finish(new Error(`kafka sink: reader crashed: ${error.message}`, { cause: error }));
  }

  private finish(error: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(error);
  }
}

function resolveOptions(o: KafkaSinkOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    brokers: o.brokers,
    topic: o.topic ?? KAFKA_TOPIC_DEFAULT,
    clientId: o.clientId,
    connectionTimeoutMs: o.connectionTimeoutMs,
    requestTimeoutMs: o.requestTimeoutMs,
    replicationFactor: o.replicationFactor ?? 1,
    messageBytesMax: o.messageBytesMax ?? MESSAGE_BYTES_MAX_DEFAULT,
    readTimeoutMs: o.readTimeoutMs ?? READ_TIMEOUT_MS_DEFAULT,
    logLevel: o.logLevel ?? LogLevel.ERROR,
  };
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  const problem =
    r.brokers.length === 0 ? 'brokers is empty'
    : r.topic === '' || r.clientId === '' ? 'topic and clientId must be non-empty'
    : !positive(r.connectionTimeoutMs) || !positive(r.requestTimeoutMs) || !positive(r.readTimeoutMs) ? 'timeouts must be positive integers (ms)'
    : !positive(r.replicationFactor) ? `replicationFactor ${r.replicationFactor} is not a positive integer`
    : !Number.isSafeInteger(r.messageBytesMax) || r.messageBytesMax < MESSAGE_BYTES_MIN ? `messageBytesMax ${r.messageBytesMax} is below ${MESSAGE_BYTES_MIN}`
    : null;
  if (problem !== null) throw new Error(`kafka sink options: ${problem}`);
  return r;
}

/** Creates the topic if missing; checks it has one partition; returns its max.message.bytes. */
async function ensureTopic(admin: Admin, o: ResolvedOptions): Promise<number> {
  await admin.createTopics({
    validateOnly: false,
    waitForLeaders: true,
    timeout: o.requestTimeoutMs,
    topics: [{
      topic: o.topic,
      numPartitions: TOPIC_PARTITIONS,
      replicationFactor: o.replicationFactor,
      configEntries: [
        { name: 'min.insync.replicas', value: String(Math.max(1, o.replicationFactor - 1)) },
        { name: 'unclean.leader.election.enable', value: 'false' },
        { name: 'cleanup.policy', value: 'delete' },
        { name: 'retention.ms', value: '-1' },
        { name: 'retention.bytes', value: '-1' },
        { name: 'max.message.bytes', value: String(o.messageBytesMax) },
        { name: 'message.timestamp.type', value: 'CreateTime' },
        { name: 'compression.type', value: 'producer' },
      ],
    }],
  }); // false when the topic exists already: then its own settings stand, checked below
  const meta = await admin.fetchTopicMetadata({ topics: [o.topic] });
  const partitions = meta.topics[0]?.partitions.length ?? 0;
  if (partitions !== TOPIC_PARTITIONS) throw new Error(`kafka sink: topic ${o.topic} has ${partitions} partitions; blocks need exactly ${TOPIC_PARTITIONS} for one total order`);
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: o.topic, configNames: ['max.message.bytes'] }],
  });
  const entry = described.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
  const messageBytesMax = Number(entry?.configValue);
  if (!Number.isSafeInteger(messageBytesMax) || messageBytesMax < MESSAGE_BYTES_MIN) {
    throw new Error(`kafka sink: topic ${o.topic} max.message.bytes is ${entry?.configValue}; at least ${MESSAGE_BYTES_MIN} is needed`);
  }
  return messageBytesMax;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`kafka sink: ${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
