/*
 * The Kafka sink: every committed block as one record on a one-partition topic, in block order,
 * each group of blocks in one Kafka transaction of a producer whose transactional.id is fixed per
 * topic (txe.<topic>). Opening the sink initialises that id, which fences every older producer of
 * the history at once: the broker aborts its open transaction and refuses its later sends, so no
 * abandoned send of a crashed or deposed engine can land after this one has read the topic end
 * (writer-term.ts has the whole rule). Readers use read_committed and know a block by the number
 * in its record; a commit marker follows each group, so block N sits at offset N-1 plus the
 * markers before it (topic-reader.ts).
 *
 * Back of the envelope. A full block (8190 txs) is one record of 8190 × 128 B bodies + 8190 B
 * results + 3 × 32 B hashes + ~40 B of header ≈ 1.06 MB (block-record.ts). At 1M TPS that is
 * 1e6 / 8190 ≈ 122 records/s ≈ 129 MB/s of payload (≈ 135 MB/s counted at 1.1 MB a block), i.e.
 * ~1 Gbit/s to the leader and as much again to each follower, and ~11 TB a day on disk. One
 * partition on one broker disk takes a few hundred MB/s, so one total order costs no throughput
 * here; beyond that txe scales on Kafka (DESIGN.md section 5), not on this file. A group of up to
 * blocksPerWriteMax blocks (64 ≈ 68 MB) goes out as sends of at most max.message.bytes (4 MiB: 3
 * full blocks), one after the other: ~41 sends/s at 1M TPS, each well under the 24 ms that allows.
 * A transaction adds AddPartitionsToTxn before the first send and EndTxn after the last, plus the
 * coordinator's markers: 17-39 ms a group measured here (bench/kafka-txn-cost.ts), which the
 * group size amortises; kafkajs retries CONCURRENT_TRANSACTIONS after CLIENT_RETRY's waits, and at
 * its default 300 ms a group cost ~300 ms (kafkajs issues #304, #1315).
 *
 * Topic settings, set explicitly when the sink creates the topic:
 *   partitions 1              one total order of blocks.
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
 *   transactional (so idempotent), maxInFlightRequests 1, acks -1 on every send: the broker drops
 *   a retried duplicate and keeps order; acks=all waits for min.insync.replicas.
 *   transactionTimeout 10 s: a transaction left open by an engine that died holds back every
 *   read_committed reader of the topic until the broker aborts it, or until the next engine's
 *   open fences it (at once).
 *   compression none: bodies are mostly Ed25519 keys (64 of 128 B) and an opaque memo (32 B), so a
 *   codec saves little, and kafkajs would compress ~130 MB/s on the event loop.
 *   retries bounded, so a lost broker fails the write (and the sink stage retries it) instead of
 *   hanging the pipeline. After a failed write the sink asks PostgreSQL whether its epoch still
 *   stands, then makes a fresh producer with the same transactional.id: initialising it fences the
 *   failed one (its transaction aborted, any send of it still queued refused), and the sink re-reads
 *   the topic end before it sends again, so a group that did commit is skipped. It no longer waits
 *   out the request timeout for stray sends (UNAVAILABLE once lasted 36 s after a 10 s outage).
 */

import kafkajs, { type Admin, type Kafka as KafkaClient, type Message, type Producer, type Transaction } from 'kafkajs';
import type { InputRing } from '../../../ring/input-ring.js';
import { minInsyncReplicas } from '../../../config.js';
import { GENESIS_HASH, type CommittedBlock } from '../../../core/block.js';
import type { Sink } from '../sink.js';
import { FencedError, fencedCause, type WriterTerm } from '../writer-term.js';
import { blockKey, encodeBlockRecord, encodeStored, type DecodedBlockRecord } from './block-record.js';
import { PARTITION, TOPIC_PARTITIONS, TopicReader, type TopicBlock } from './topic-reader.js';
import { installCrc32c } from './crc32c.js';
import { installCoordinatorCache } from './coordinator-cache.js';

// kafkajs is CommonJS: Node's ESM loader exposes only its default export, so values come from it.
const { CompressionTypes, ConfigResourceTypes, Kafka, Partitioners, logLevel: LogLevel } = kafkajs;
// Before this process's first produce: kafkajs loads its record-batch checksum then (crc32c.ts).
installCrc32c();
// And before its first transaction: kafkajs finds the coordinator once, not before every request (coordinator-cache.ts).
installCoordinatorCache();
type LogLevel = kafkajs.logLevel;

export interface KafkaSinkOptions {
  brokers: string[];
  topic?: string; // default 'txe.blocks'
  clientId: string;
  connectionTimeoutMs: number;
  requestTimeoutMs: number; // also bounds the broker's wait for acks (half of it, see ackTimeoutMs)
  term: WriterTerm; // the writer epoch every record carries, and the check before a new producer
  transactionalId?: string; // default 'txe.<topic>': one per history, so a new writer fences the old
  replicationFactor?: number; // used when the sink creates the topic; default 1
  messageBytesMax?: number; // max.message.bytes when the sink creates the topic; default 4 MiB
  readTimeoutMs?: number; // whole readBlocks / lastBlock call, group join included; default 30 s
  logLevel?: LogLevel; // kafkajs logging; default ERROR
}

export const KAFKA_TOPIC_DEFAULT = 'txe.blocks';
export const MESSAGE_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;
const MESSAGE_BYTES_MIN = 16 * 1024;
const READ_TIMEOUT_MS_DEFAULT = 30_000;
const TRANSACTION_TIMEOUT_MS = 10_000;
export const READ_BLOCKS_MAX = 256; // one readBlocks call: ≤ 256 × 1.06 MB ≈ 270 MB in memory
// A v2 record batch has a 61 B header; each record adds < 40 B (varint lengths and deltas, the
// 8 B key, attributes). Rounded up, so a send sized with them never exceeds max.message.bytes.
const BATCH_OVERHEAD_BYTES = 1024;
const RECORD_OVERHEAD_BYTES = 64;
// The client's retry also drives the transaction coordinator's requests (kafkajs's eosManager). The
// next group's AddPartitionsToTxn meets CONCURRENT_TRANSACTIONS until the broker has written the
// previous commit's markers, so it is retried soon and often: 2 ms growing by 1.5 (kafkajs's 300 ms
// cost ~300 ms a group; 10 ms doubling cost 113 ms a group of 1024-transaction blocks, this 31 ms;
// bench/RESULTS.md, session 5). 16 tries wait ~2.2 s in all before the write fails and is retried.
const CLIENT_RETRY = { retries: 16, initialRetryTime: 2, maxRetryTime: 500, factor: 0.2, multiplier: 1.5 };
// The producer's own retry wraps each send: when the coordinator answers AddPartitionsToTxn with
// CONCURRENT_TRANSACTIONS past the client's retries, the send fails up to here and waits this. At
// kafkajs's 100 ms first wait, back-to-back groups on the 3-node cluster took 100-135 ms each
// (the coordinator and the partition leader on different nodes); from 5 ms, 7-30 ms (session 6).
// 9 tries wait ~2.5 s in all.
const PRODUCER_RETRY = { retries: 9, initialRetryTime: 5, maxRetryTime: 2_000, factor: 0.2, multiplier: 2 };

/** Lifecycle: open ⇄ failed (a write failed; the next write recovers first); fenced and closed are final. */
type SinkState = 'open' | 'failed' | 'fenced' | 'closed';

/** One block on its way out: header fields to check against the topic, and its record. */
interface Outgoing {
  number: number;
  hash: Buffer;
  prevHash: Buffer;
  sequencedAtMs: number;
  encode: () => Buffer;
}

/** The topic's last block as this sink knows it. */
interface TopicEnd { number: number; hash: Buffer; epoch: number; offset: number }
const EMPTY_END: TopicEnd = { number: 0, hash: GENESIS_HASH, epoch: 0, offset: -1 };

interface ResolvedOptions extends Required<Omit<KafkaSinkOptions, 'logLevel'>> { logLevel: LogLevel }

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  readonly topic: string;
  private state: SinkState = 'open';
  private fencedBy: FencedError | null = null;
  private writing = false;
  private end: TopicEnd = EMPTY_END;
  private producer: Producer;
  private readonly reader: TopicReader;

  private constructor(
    private readonly kafka: KafkaClient,
    private readonly admin: Admin,
    private readonly options: ResolvedOptions,
    private readonly messageBytesMax: number, // the topic's max.message.bytes, as the broker reports it
  ) {
    this.topic = options.topic;
    this.producer = this.newProducer();
    this.reader = new TopicReader(kafka, admin, { topic: options.topic, clientId: options.clientId, messageBytesMax, readTimeoutMs: options.readTimeoutMs });
  }

  /** Creates the topic if missing, fences older producers of the history, and reads the topic end. */
  static async open(options: KafkaSinkOptions): Promise<KafkaSink> {
    const resolved = resolveOptions(options);
    const { kafka, admin } = await connectAdmin(resolved);
    let sink: KafkaSink | null = null;
    try {
      const messageBytesMax = await ensureTopic(admin, resolved);
      sink = new KafkaSink(kafka, admin, resolved, messageBytesMax);
      await sink.startProducer();
      await sink.resync();
      return sink;
    } catch (error) {
      if (sink !== null) await sink.close().catch(() => undefined);
      else await admin.disconnect();
      throw error;
    }
  }

  /** Creates the blocks topic with the sink's settings if it is missing (cluster validators, before any leader writes). */
  static async createTopic(options: KafkaSinkOptions): Promise<void> {
    const resolved = resolveOptions(options);
    const { admin } = await connectAdmin(resolved);
    try {
      await ensureTopic(admin, resolved);
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * A cluster leader's view of the topic end (engine/cluster/validator.ts): the last block its
   * replica accepted, below the topic's last record when the blocks after it are invalid (a faulty
   * leader's). The next block written takes the height after it; validators skip the invalid ones.
   */
  continueAfter(number: number, hash: Buffer): void {
    if (number > this.end.number) throw new Error(`kafka sink: continueAfter(${number}) is past the topic end ${this.end.number}`);
    this.end = { ...this.end, number, hash };
  }

  /** The newest block on the topic as this sink last learned it (0: the topic is empty). */
  get lastPublishedBlock(): number { return this.end.number; }
  get lastPublishedHash(): Buffer { return this.end.hash; }
  /** The topic's max.message.bytes as the broker reports it: no record may be larger. */
  get recordBytesMax(): number { return this.messageBytesMax; }

  write(blocks: CommittedBlock[], ring: InputRing): Promise<void> {
    const epoch = this.options.term.epoch;
    return this.publishOutgoing(blocks.map((b) => ({
      number: b.number, hash: b.hash, prevHash: b.prevHash, sequencedAtMs: b.sequencedAtMs,
      encode: () => encodeBlockRecord(b, ring.copyBodies(b.ringStart, b.txs), b.sequencedAtMs, epoch, ring.authOf(b.ringStart, b.txs)),
    })));
  }

  /** Republishes blocks rebuilt from PostgreSQL (recovery), each with the epoch it was written under. */
  publishRecords(records: DecodedBlockRecord[]): Promise<void> {
    return this.publishOutgoing(records.map((r) => ({
      number: r.number, hash: r.hash, prevHash: r.prevHash, sequencedAtMs: r.sequencedAtMs,
      encode: () => encodeStored(r),
    })));
  }

  /** Re-reads the topic end: the number of the last block on it, 0 when it is empty. */
  async lastBlock(): Promise<number> {
    this.assertState('lastBlock', 'open', 'failed');
    await this.resync();
    return this.end.number;
  }

  /** Blocks fromNumber..toNumber as the topic holds them (at most READ_BLOCKS_MAX a call). */
  async readBlocks(fromNumber: number, toNumber: number): Promise<DecodedBlockRecord[]> {
    this.assertState('readBlocks', 'open', 'failed');
    if (!Number.isSafeInteger(fromNumber) || !Number.isSafeInteger(toNumber) || fromNumber < 1 || toNumber < fromNumber) {
      throw new RangeError(`kafka sink: readBlocks(${fromNumber}, ${toNumber}) needs 1 <= from <= to`);
    }
    if (toNumber - fromNumber + 1 > READ_BLOCKS_MAX) throw new RangeError(`kafka sink: readBlocks of ${toNumber - fromNumber + 1} blocks exceeds ${READ_BLOCKS_MAX}`);
    // The topic end as last read (recovery has just asked lastBlock): read again only if it falls short.
    if (toNumber > this.end.number) await this.resync();
    if (this.end.number === 0) throw new RangeError(`kafka sink: blocks ${fromNumber}..${toNumber} asked, topic ${this.topic} is empty`);
    return this.reader.blocks(fromNumber, toNumber, this.end);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const steps = [this.reader.close(), this.producer.disconnect(), this.admin.disconnect()];
    const failed = (await Promise.allSettled(steps)).filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed.length > 0) throw new Error(`kafka sink: close failed: ${failed.map((f) => String(f.reason)).join('; ')}`);
  }

  private async publishOutgoing(blocks: Outgoing[]): Promise<void> {
    if (this.fencedBy) throw this.fencedBy;
    this.assertState('write', 'open', 'failed');
    if (this.writing) throw new Error('kafka sink: write while another write is under way (the sink stage writes one group at a time)');
    this.writing = true;
    try {
      if (this.state === 'failed') await this.recover();
      await this.publish(this.unpublished(blocks)); // a check that throws has sent nothing
    } catch (error) {
      const fenced = fencedCause(error);
      if (fenced !== null) this.fence(fenced);
      throw error;
    } finally {
      this.writing = false;
    }
  }

  /**
   * The blocks not on the topic yet, checked to continue it: numbers contiguous from the last
   * published block, and hashes chained to it (a repeat of the last block must be that block).
   */
  private unpublished(blocks: Outgoing[]): Outgoing[] {
    const last = this.end;
    const repeat = blocks.find((b) => b.number === last.number);
    if (repeat !== undefined && !repeat.hash.equals(last.hash)) {
      throw new Error(`kafka sink: block ${repeat.number} differs from block ${last.number} on topic ${this.topic}: the topic holds another history`);
    }
    const fresh = blocks.filter((b) => b.number > last.number);
    let prevHash = last.hash;
    fresh.forEach((b, i) => {
      const want = last.number + 1 + i;
      if (b.number !== want) throw new Error(`kafka sink: block ${b.number} does not follow block ${want - 1} on topic ${this.topic} (expected block ${want})`);
      if (!b.prevHash.equals(prevHash)) throw new Error(`kafka sink: block ${b.number}'s prev_hash does not chain to block ${want - 1} on topic ${this.topic}`);
      prevHash = b.hash;
    });
    return fresh;
  }

  /**
   * Sends the blocks in order in one transaction, as few sends as max.message.bytes allows: the
   * broker applies that limit to a whole record batch, and kafkajs puts all of one send's records
   * for a partition in one batch. The group is on the topic, for every reader, once the
   * transaction commits; the sink's view of the topic end moves only then.
   */
  private async publish(blocks: Outgoing[]): Promise<void> {
    if (blocks.length === 0) return;
    const sendBytesMax = this.messageBytesMax - BATCH_OVERHEAD_BYTES;
    const txn = await this.producer.transaction();
    try {
      let end = this.end;
      let chunk: { block: Outgoing; message: Message }[] = [];
      let chunkBytes = 0;
      for (const block of blocks) {
        const value = block.encode();
        const bytes = value.length + RECORD_OVERHEAD_BYTES;
        if (bytes > sendBytesMax) throw new Error(`kafka sink: block ${block.number} is a ${value.length} B record, over topic ${this.topic}'s max.message.bytes ${this.messageBytesMax}`);
        if (chunkBytes + bytes > sendBytesMax) {
          end = await this.send(txn, chunk, end);
          chunk = [];
          chunkBytes = 0;
        }
        chunk.push({ block, message: { key: blockKey(block.number), value, partition: PARTITION, timestamp: String(block.sequencedAtMs) } });
        chunkBytes += bytes;
      }
      end = await this.send(txn, chunk, end);
      await txn.commit();
      this.end = end;
    } catch (error) {
      this.state = 'failed'; // the next write makes a fresh producer, which fences this one
      if (txn.isActive()) await txn.abort().catch(() => undefined); // a fenced producer cannot; its successor's init aborts it
      throw new Error(`kafka sink: publishing blocks ${blocks[0].number}..${blocks[blocks.length - 1].number} to ${this.topic} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /** One send of the transaction; returns the topic end it makes once the transaction commits. */
  private async send(txn: Transaction, chunk: { block: Outgoing; message: Message }[], end: TopicEnd): Promise<TopicEnd> {
    const first = chunk[0].block;
    const last = chunk[chunk.length - 1].block;
    if (first.number !== end.number + 1) throw new Error(`send of block ${first.number} after block ${end.number}`);
    const acks = await txn.send({
      topic: this.topic,
      messages: chunk.map((c) => c.message),
      acks: -1,
      timeout: this.ackTimeoutMs,
      compression: CompressionTypes.None,
    });
    if (acks.length !== 1 || acks[0].partition !== PARTITION || acks[0].errorCode !== 0) throw new Error(`unexpected acks ${JSON.stringify(acks)}`);
    const baseOffset = Number(acks[0].baseOffset);
    if (!(baseOffset > end.offset)) throw new Error(`block ${first.number} landed at offset ${baseOffset}, not after block ${end.number}'s offset ${end.offset}`);
    return { number: last.number, hash: last.hash, epoch: this.options.term.epoch, offset: baseOffset + chunk.length - 1 };
  }

  /**
   * After a failed write: PostgreSQL must still name this sink's epoch (else it is fenced, for good,
   * and never initialises a producer that would fence the engine that replaced it). Then a fresh
   * producer with the same transactional.id, whose initialisation fences the failed one, and the
   * topic end as it really is.
   */
  private async recover(): Promise<void> {
    await this.options.term.confirm();
    const old = this.producer;
    this.producer = this.newProducer();
    await old.disconnect().catch(() => undefined); // the old session is abandoned either way
    await this.startProducer();
    await this.resync();
    this.state = 'open';
  }

  /** Connects and initialises the transactional id (kafkajs does it at the first transaction): the fence. */
  private async startProducer(): Promise<void> {
    await this.producer.connect();
    const txn = await this.producer.transaction();
    await txn.abort(); // nothing was added: no request, the producer id is initialised
  }

  /** Reads the topic end; a block of a newer epoch there means another engine writes this history. */
  private async resync(): Promise<void> {
    const last: TopicBlock | null = await this.reader.end();
    const end = last === null ? EMPTY_END : { number: last.record.number, hash: last.record.hash, epoch: last.record.epoch, offset: last.offset };
    if (end.epoch > this.options.term.epoch) throw this.fence(new FencedError(this.options.term.epoch, end.epoch, `topic ${this.topic} ends with block ${end.number} of epoch ${end.epoch}`));
    this.end = end;
  }

  private fence(error: FencedError): FencedError {
    this.fencedBy ??= error;
    this.state = 'fenced';
    return this.fencedBy;
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      transactionalId: this.options.transactionalId,
      transactionTimeout: TRANSACTION_TIMEOUT_MS,
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

/** The sink's Kafka client (CLIENT_RETRY drives the transaction coordinator's requests) and a connected admin. */
async function connectAdmin(r: ResolvedOptions): Promise<{ kafka: KafkaClient; admin: Admin }> {
  const kafka = new Kafka({
    clientId: r.clientId,
    brokers: r.brokers,
    connectionTimeout: r.connectionTimeoutMs,
    requestTimeout: r.requestTimeoutMs,
    logLevel: r.logLevel,
    retry: CLIENT_RETRY,
  });
  const admin = kafka.admin({ retry: PRODUCER_RETRY });
  await admin.connect();
  return { kafka, admin };
}

function resolveOptions(o: KafkaSinkOptions): ResolvedOptions {
  const topic = o.topic ?? KAFKA_TOPIC_DEFAULT;
  const r: ResolvedOptions = {
    brokers: o.brokers,
    topic,
    clientId: o.clientId,
    connectionTimeoutMs: o.connectionTimeoutMs,
    requestTimeoutMs: o.requestTimeoutMs,
    term: o.term,
    transactionalId: o.transactionalId ?? `txe.${topic}`,
    replicationFactor: o.replicationFactor ?? 1,
    messageBytesMax: o.messageBytesMax ?? MESSAGE_BYTES_MAX_DEFAULT,
    readTimeoutMs: o.readTimeoutMs ?? READ_TIMEOUT_MS_DEFAULT,
    logLevel: o.logLevel ?? LogLevel.ERROR,
  };
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  const problem =
    r.brokers.length === 0 ? 'brokers is empty'
    : r.topic === '' || r.clientId === '' || r.transactionalId === '' ? 'topic, clientId and transactionalId must be non-empty'
    : !positive(r.connectionTimeoutMs) || !positive(r.requestTimeoutMs) || !positive(r.readTimeoutMs) ? 'timeouts must be positive integers (ms)'
    : !positive(r.replicationFactor) ? `replicationFactor ${r.replicationFactor} is not a positive integer`
    : !Number.isSafeInteger(r.messageBytesMax) || r.messageBytesMax < MESSAGE_BYTES_MIN ? `messageBytesMax ${r.messageBytesMax} is below ${MESSAGE_BYTES_MIN}`
    : !positive(r.term.epoch) ? `term.epoch ${r.term.epoch} is not a positive integer (the pg sink takes it)`
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
        { name: 'min.insync.replicas', value: String(minInsyncReplicas(o.replicationFactor)) },
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
