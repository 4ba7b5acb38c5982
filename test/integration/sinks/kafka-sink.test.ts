// Proves the Kafka sink against the real broker, with real blocks: the real Sequencer cuts them from
// batches in a real 1024-slot input ring (verdicts stored as workers would, some rejected), and the
// ring wraps inside the last group, so copyBodies' two-segment path is on the wire too.
//  (a) three groups written, each one transaction (its records and one commit marker) → a
//      read_committed consumer in a fresh group reads exactly those blocks, in order, once each
//      (key = number big-endian, timestamp = sequencing time, writer epoch = the sink's), and every
//      field round-trips: bodies equal the ring's, bodies_digest and the hash recompute, prev_hash
//      chains from genesis;
//  (b) re-writing published blocks is a no-op (the high watermark does not move: no transaction),
//      and a group that overlaps the topic end publishes only its new blocks;
//  (c) a gap, a broken prev_hash, or a different block under a published number throw clear Errors
//      and publish nothing;
//  (d) a new KafkaSink on the same topic learns the last block from the topic and continues it;
//  (e) readBlocks returns records by number, and refuses ranges outside the topic;
//  (f) on a topic made by someone else with max.message.bytes 64 KiB, publishRecords republishes the
//      records read back (split into several sends, which the broker's limit forces), skips what is
//      there, refuses a record over the limit, and after a send the broker rejects (a timestamp
//      past message.timestamp.after.max.ms) recovers with a fresh producer and goes on without a gap;
//  (g) a zombie: an older producer of the history, mid-transaction, is fenced the moment a newer
//      sink opens (its open transaction aborted, its later sends and commit refused); the deposed
//      sink's own next write is refused too, and once PostgreSQL's epoch (here the test's) says it
//      lost, it stops for good. The topic holds each block once, the newer writer's block after.
// Every wait is bounded; afterAll closes the sinks and the consumer and deletes topics and group.

import { createHash, randomBytes } from 'node:crypto';
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaSink } from '../../../engine/stages/commit/kafka/kafka-sink.js';
import { coordinatorLookups, installCoordinatorCache } from '../../../engine/stages/commit/kafka/coordinator-cache.js';
import { blockKey, encodeBlockRecord, type DecodedBlockRecord } from '../../../engine/stages/commit/kafka/block-record.js';
import { InputRing, VERDICT_REJECTED_FLAG, VERDICT_VALID, createRingBuffers } from '../../../engine/ring/input-ring.js';
import { Sequencer } from '../../../engine/core/sequencer.js';
import { GENESIS_HASH, blockHash, type CommittedBlock } from '../../../engine/core/block.js';
import { batchDigest, packBodies } from '../../../engine/core/batch.js';
import type { RecordFields } from '../../../engine/core/record.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, transfer, user } from '../../support/fixtures.js';
import { kafkaBrokers } from '../../support/servers.js';
import { cleanUp, withTimeout } from '../../support/async.js';
import { readKafkaRecords } from '../../support/durable.js';
import { FencedError, type WriterTerm } from '../../../engine/stages/commit/writer-term.js';

const WAIT_MS = 30_000;
const RING_SLOTS = 1024;
// Txs per block, per write. Cursors: group 1 ends at 205, group 2 at 906; group 3 (157) wraps.
const GROUPS = [[5, 200], [1, 400, 300], [150, 7]];
const SMALL_MESSAGE_BYTES = 64 * 1024; // (f): group 2's blocks (~51 + 39 KB) cannot share a send

const recipients = [user('alice').publicKey, user('bob').publicKey, user('carol').publicKey];

/** Real blocks: batches through a real ring and the real Sequencer, without workers. */
class BlockMaker {
  readonly ring = new InputRing(createRingBuffers(RING_SLOTS));
  readonly bodiesOf = new Map<number, Buffer>(); // block number → the batch's bodies as submitted
  private readonly seq = new Sequencer({ accountsMax: 16, issuers: [issuer.publicKey], approvalPolicies: [], approvalsPendingMax: 8 });
  private issuerNonce = 0n;
  private aliceNonce = 0n;

  /** A batch of `txs`: mints, transfers, a replayed nonce (bad_nonce) and worker rejections. */
  block(txs: number): CommittedBlock {
    const records: RecordFields[] = [];
    const rejected = new Set<number>();
    for (let i = 0; i < txs; i++) {
      const memo = randomBytes(32);
      if (i % 11 === 5) {
        rejected.add(i); // the worker says bad_signature: no nonce is consumed
        records.push({ ...mint(recipients[0], this.issuerNonce + 1n, 1n), memo });
      } else if (i % 7 === 3) {
        records.push({ ...mint(recipients[1], this.issuerNonce, 1n), memo }); // replay: bad_nonce
      } else if (i % 5 === 4 && this.issuerNonce > 0n) {
        records.push({ ...transfer(recipients[0], recipients[2], ++this.aliceNonce, 1n), memo });
      } else {
        records.push({ ...mint(recipients[0], ++this.issuerNonce, BigInt(10 + i)), memo });
      }
    }
    const packed = packBodies(records);
    const start = this.ring.tryClaim(txs);
    if (start < 0) throw new Error('test ring full: release the previous group first');
    this.ring.writeBodies(start, packed, txs, 128);
    for (let i = 0; i < txs; i++) {
      Atomics.store(this.ring.verdicts, (start + i) & this.ring.mask, rejected.has(i) ? VERDICT_REJECTED_FLAG | Result.bad_signature : VERDICT_VALID);
    }
    const block = this.seq.sequenceBatch(this.ring, start, txs, batchDigest(packed));
    this.ring.markSequenced(start + txs);
    this.bodiesOf.set(block.number, packed);
    return block;
  }

  group(sizes: number[]): CommittedBlock[] {
    return sizes.map((txs) => this.block(txs));
  }

  /** What the sink stage does once a group is durable. */
  release(blocks: CommittedBlock[]): void {
    const last = blocks[blocks.length - 1];
    this.ring.release(last.ringStart + last.txs);
  }
}

function expectRecordIs(record: DecodedBlockRecord, block: CommittedBlock, bodies: Buffer): void {
  expect(record.number).toBe(block.number);
  expect(record.firstSeq).toBe(block.firstSeq);
  expect(record.entries).toBe(block.entries);
  expect(record.txs).toBe(block.txs);
  expect(record.hash.equals(block.hash)).toBe(true);
  expect(record.prevHash.equals(block.prevHash)).toBe(true);
  expect(record.bodiesDigest.equals(block.bodiesDigest)).toBe(true);
  expect(Buffer.from(block.results).equals(record.results)).toBe(true);
  expect(record.bodies.equals(bodies)).toBe(true);
  expect(record.sequencedAtMs).toBe(block.sequencedAtMs);
  // Self-contained: the record alone recomputes its digest and hash.
  expect(createHash('sha256').update(record.bodies).digest().equals(record.bodiesDigest)).toBe(true);
  expect(blockHash(record.prevHash, record.number, record.firstSeq, record.entries, record.results, record.bodiesDigest).equals(record.hash)).toBe(true);
}

describe('KafkaSink against the real broker', () => {
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const topic = `txe-test-blocks-${suffix}`;
  const smallTopic = `txe-test-blocks-small-${suffix}`;
  const kafka = new Kafka({ clientId: `txe-test-sink-${suffix}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING, connectionTimeout: 5_000, requestTimeout: 10_000 });
  const admin: Admin = kafka.admin();
  const maker = new BlockMaker();
  const blocks: CommittedBlock[] = [];
  const sinks: KafkaSink[] = [];
  let sink: KafkaSink;
  // PostgreSQL's txe_writer row stands in as a number here: the epoch the sinks' terms check.
  let writerEpoch = 1;
  const term = (epoch: number): WriterTerm => ({
    epoch,
    confirm: async () => { if (writerEpoch !== epoch) throw new FencedError(epoch, writerEpoch, 'the test\'s writer epoch'); },
  });

  const openSink = async (on: string, messageBytesMax?: number, epoch = 1): Promise<KafkaSink> => {
    const opened = await withTimeout(KafkaSink.open({
      brokers: kafkaBrokers(), topic: on, clientId: `txe-test-sink-${suffix}`, connectionTimeoutMs: 5_000, requestTimeoutMs: 10_000,
      messageBytesMax, logLevel: logLevel.NOTHING, term: term(epoch),
    }), WAIT_MS, `KafkaSink.open(${on})`);
    sinks.push(opened);
    return opened;
  };
  const high = async (on: string): Promise<number> => Number((await admin.fetchTopicOffsets(on))[0].high);
  // A commit returns once the coordinator logged it; it writes the markers to the partition just
  // after, so the high watermark reaches its value a moment later. Polled, bounded.
  const expectHigh = async (on: string, want: number): Promise<void> => {
    const deadline = Date.now() + 5_000;
    let now = await high(on);
    while (now !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      now = await high(on);
    }
    expect(now).toBe(want);
  };
  const write = async (group: CommittedBlock[]): Promise<void> => withTimeout(sink.write(group, maker.ring), WAIT_MS, 'sink.write');
  const publishGroup = async (sizes: number[]): Promise<CommittedBlock[]> => {
    const group = maker.group(sizes);
    await write(group);
    maker.release(group);
    blocks.push(...group);
    return group;
  };

  beforeAll(async () => {
    await withTimeout(admin.connect(), WAIT_MS, 'admin.connect');
    sink = await openSink(topic);
  });

  afterAll(async () => {
    const steps: [string, () => Promise<unknown>][] = [
      ...sinks.map((s, i): [string, () => Promise<unknown>] => [`sink #${i}.close`, () => s.close()]),
      ['admin.deleteTopics', () => admin.deleteTopics({ topics: [topic, smallTopic], timeout: 10_000 })],
      ['admin.disconnect', () => admin.disconnect()],
    ];
    await cleanUp('kafka sink test', steps);
  });

  it('creates a one-partition topic with explicit settings and starts at block 0', async () => {
    expect(sink.name).toBe('kafka');
    expect(sink.lastPublishedBlock).toBe(0);
    expect(await sink.lastBlock()).toBe(0);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics[0].partitions).toHaveLength(1);
    const names = ['cleanup.policy', 'retention.ms', 'retention.bytes', 'min.insync.replicas', 'max.message.bytes', 'message.timestamp.type', 'unclean.leader.election.enable'];
    const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }] });
    expect(Object.fromEntries(cfg.resources[0].configEntries.map((e) => [e.configName, e.configValue]))).toEqual({
      'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1', 'min.insync.replicas': '1',
      'max.message.bytes': String(4 * 1024 * 1024), 'message.timestamp.type': 'CreateTime', 'unclean.leader.election.enable': 'false',
    });
  });

  it('(a) publishes three groups; a fresh consumer group reads each block once, in order, every field intact', async () => {
    expect(installCoordinatorCache()).toBe('installed'); // by the sink's module, before its first transaction
    const lookupsBefore = coordinatorLookups();
    for (const [g, sizes] of GROUPS.entries()) {
      const group = await publishGroup(sizes);
      expect(sink.lastPublishedBlock).toBe(group[group.length - 1].number);
      await expectHigh(topic, group[group.length - 1].number + g + 1); // one commit marker a group
    }
    // The transaction coordinator was found once when the sink opened (coordinator-cache.ts), not
    // again before each group's AddPartitionsToTxn and EndTxn (kafkajs alone: 2 a group, and more on retries).
    expect(coordinatorLookups() - lookupsBefore).toBe(0);
    expect(blocks.map((b) => b.number)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(blocks.some((b) => b.ringStart % RING_SLOTS + b.txs > RING_SLOTS)).toBe(true); // a block wrapped the ring
    expect(blocks.some((b) => b.entries < b.txs)).toBe(true);

    const received = await withTimeout(readKafkaRecords(topic), WAIT_MS, 'reading the topic');
    await expectHigh(topic, blocks.length + GROUPS.length); // nothing was written while it was read
    expect(received.map((r) => r.record.number)).toEqual(blocks.map((b) => b.number));
    // Each group's records are contiguous offsets; its commit marker takes the next one.
    expect(received.map((r) => r.offset)).toEqual([0, 1, 3, 4, 5, 7, 8]);
    let prevHash: Buffer = GENESIS_HASH;
    received.forEach(({ key, timestamp, record }, i) => {
      const block = blocks[i];
      expect(key.equals(blockKey(block.number))).toBe(true);
      expect(key.readBigUInt64BE(0)).toBe(BigInt(block.number));
      expect(timestamp).toBe(String(block.sequencedAtMs));
      expectRecordIs(record, block, maker.bodiesOf.get(block.number)!);
      expect(record.epoch).toBe(1);
      expect(record.prevHash.equals(prevHash)).toBe(true);
      prevHash = record.hash;
    });
  });

  it('(b) re-writing published blocks is a no-op; an overlapping group publishes only its new blocks', async () => {
    await write(blocks.slice(2, 5)); // group 2 again (its ring slots are reused by now: never read)
    await write(blocks.slice(5)); // the last group again, through the same-hash check
    await write(blocks);
    await expectHigh(topic, 10);
    expect(sink.lastPublishedBlock).toBe(7);

    const next = maker.group([3, 2]); // blocks 8, 9
    await write([...blocks.slice(5), ...next]); // 6, 7 are there: a retry after a partial publish
    maker.release(next);
    blocks.push(...next);
    await expectHigh(topic, 13); // 8, 9 and their marker
    expect(sink.lastPublishedBlock).toBe(9);
  });

  it('(c) a gap, a broken chain or a different block under a published number throws and publishes nothing', async () => {
    const [b10, b11] = maker.group([4, 6]);
    await expect(write([b11])).rejects.toThrow(/block 11 does not follow block 9 on topic .* \(expected block 10\)/);
    await expect(write([b10, { ...b11, number: 12 }])).rejects.toThrow(/block 12 does not follow block 10/);
    await expect(write([{ ...b10, prevHash: randomBytes(32) }])).rejects.toThrow(/block 10's prev_hash does not chain to block 9/);
    await expect(write([{ ...blocks[8], hash: randomBytes(32) }, b10])).rejects.toThrow(/block 9 differs from block 9 .*another history/);
    await expectHigh(topic, 13);
    expect(sink.lastPublishedBlock).toBe(9);

    await write([b10, b11]); // the sink is still usable: the throws changed nothing
    maker.release([b10, b11]);
    blocks.push(b10, b11);
    await expectHigh(topic, 16);
  });

  it('(d) a new sink on the same topic learns the last block from the topic and continues it', async () => {
    await sink.close();
    await expect(sink.lastBlock()).rejects.toThrow(/lastBlock while closed/);
    sink = await openSink(topic);
    expect(sink.lastPublishedBlock).toBe(11);
    expect(await sink.lastBlock()).toBe(11);
    await write(blocks.slice(9)); // known to the topic, not to this sink's memory: skipped by number
    await publishGroup([9]);
    expect(sink.lastPublishedBlock).toBe(12);
    await expectHigh(topic, 18); // opening fenced older producers without writing a marker
  });

  it('(e) readBlocks returns the records by number and refuses ranges outside the topic', async () => {
    const all = await withTimeout(sink.readBlocks(1, 12), WAIT_MS, 'readBlocks(1, 12)');
    expect(all.map((r) => r.number)).toEqual(blocks.map((b) => b.number));
    all.forEach((r, i) => expectRecordIs(r, blocks[i], maker.bodiesOf.get(blocks[i].number)!));
    const middle = await sink.readBlocks(4, 5);
    expect(middle.map((r) => r.number)).toEqual([4, 5]);
    expectRecordIs(middle[1], blocks[4], maker.bodiesOf.get(5)!);
    expect((await sink.readBlocks(12, 12))[0].hash.equals(blocks[11].hash)).toBe(true);
    await expect(sink.readBlocks(12, 13)).rejects.toThrow(/blocks 12..13 asked, topic .* ends at block 12/);
    await expect(sink.readBlocks(0, 1)).rejects.toThrow(RangeError);
    await expect(sink.readBlocks(3, 2)).rejects.toThrow(RangeError);
  });

  it('(f) publishRecords republishes recovered blocks in several sends, skips duplicates and recovers from a rejected send', async () => {
    const created = await admin.createTopics({
      waitForLeaders: true, timeout: WAIT_MS,
      topics: [{ topic: smallTopic, numPartitions: 1, replicationFactor: 1, configEntries: [
        { name: 'max.message.bytes', value: String(SMALL_MESSAGE_BYTES) },
        { name: 'message.timestamp.after.max.ms', value: '60000' },
      ] }],
    });
    expect(created).toBe(true);
    const small = await openSink(smallTopic); // exists: its own max.message.bytes stands
    expect(small.lastPublishedBlock).toBe(0);
    const records = await sink.readBlocks(1, 12);

    await small.publishRecords(records.slice(0, 5)); // blocks 1..5 are ~137 KB: at least 3 sends, one transaction
    await expectHigh(smallTopic, 6);
    await small.publishRecords(records.slice(0, 5));
    await expectHigh(smallTopic, 6);

    const tooBig: DecodedBlockRecord = { ...records[5], number: 6, txs: 600, entries: 0, results: Buffer.alloc(600), bodies: Buffer.alloc(600 * 128) };
    await expect(small.publishRecords([tooBig])).rejects.toThrow(/block 6 is a \d+ B record, over topic .* max.message.bytes 65536/);

    const future = { ...records[5], sequencedAtMs: Date.now() + 24 * 3600 * 1000 }; // the broker refuses it
    await expect(small.publishRecords([future])).rejects.toThrow(/publishing blocks 6..6 to .* failed/);
    expect((await readKafkaRecords(smallTopic)).map((r) => r.record.number)).toEqual([1, 2, 3, 4, 5]); // block 6 is not on it

    await small.publishRecords(records.slice(3)); // recovers (fresh producer, topic end re-read), 4, 5 skipped
    expect(small.lastPublishedBlock).toBe(12);
    expect((await readKafkaRecords(smallTopic)).map((r) => r.record.number)).toEqual(blocks.map((b) => b.number));
    const copied = await small.readBlocks(1, 12);
    copied.forEach((r, i) => {
      expectRecordIs(r, blocks[i], maker.bodiesOf.get(blocks[i].number)!);
    });
  });

  it('(g) fences a zombie producer and a deposed sink: the topic holds each block once', async () => {
    const before = (await readKafkaRecords(topic)).map((r) => r.record.number);
    expect(before).toEqual(blocks.map((b) => b.number)); // 1..12, written under epoch 1
    // An older engine's producer of this history, mid-transaction with a block 13 of its own.
    const zombie = kafka.producer({ transactionalId: `txe.${topic}`, idempotent: true, maxInFlightRequests: 1 });
    await zombie.connect();
    const zombieTxn = await zombie.transaction();
    const [b13] = maker.group([5]);
    const zombieRecord = { key: blockKey(13), value: encodeBlockRecord(b13, maker.bodiesOf.get(13)!, b13.sequencedAtMs, 1), partition: 0 };
    await zombieTxn.send({ topic, messages: [zombieRecord], acks: -1 });

    writerEpoch = 2; // the newer engine took the epoch in PostgreSQL, then opens its Kafka sink
    const deposed = sink;
    const newer = await openSink(topic, undefined, 2);
    expect(newer.lastPublishedBlock).toBe(12); // the zombie's open transaction was aborted, not read
    await expect(zombieTxn.send({ topic, messages: [zombieRecord], acks: -1 })).rejects.toThrow();
    await expect(zombieTxn.commit()).rejects.toThrow();
    await zombie.disconnect();

    await withTimeout(newer.write([b13], maker.ring), WAIT_MS, 'newer.write');
    // The deposed sink still thinks it may write: Kafka refuses its producer, and PostgreSQL's epoch
    // tells it why, so it stops for good without re-initialising a producer (which would fence the newer).
    const [b14] = maker.group([3]);
    await expect(deposed.write([b13, b14], maker.ring)).rejects.toThrow(/publishing blocks 13..14/); // its producer is fenced
    await expect(deposed.write([b13, b14], maker.ring)).rejects.toThrow(FencedError);
    await expect(deposed.write([b13, b14], maker.ring)).rejects.toThrow(/writer epoch 1 was fenced by epoch 2/);
    maker.release([b13, b14]);

    const after = await readKafkaRecords(topic);
    expect(after.map((r) => r.record.number)).toEqual([...before, 13]);
    expect(after[after.length - 1].record.hash.equals(b13.hash)).toBe(true);
    expect(after[after.length - 1].record.epoch).toBe(2);
    sink = newer;
  });
});
