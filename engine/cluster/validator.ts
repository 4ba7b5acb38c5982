/*
 * One validator of the four (issue 13). Every validator, leader or not:
 *
 *   follow    reads the blocks topic (read_committed, from the start) and judges every record with
 *             its replica (replica.ts): verified again, applied again, or skipped, or a fault.
 *   attest    for each block it applied, signs (height, block hash, state hash, term) with its own
 *             Ed25519 key and publishes it to the attestations topic, after persisting the height
 *             (signed-height.ts): it never signs two hashes at one height.
 *   finality  reads every attestation (from the topic, and straight from the validator that signed
 *             it: attestation-peers.ts), checks its signature against the cluster file, counts
 *             3 of 4 on the same (block hash, state hash) (finality.ts), and flags a validator
 *             whose attestation differs from what its own replica computed.
 *   campaign  in etcd (election.ts). Elected: it opens the Kafka sink under its term (which fences
 *             the previous leader's producer), waits until its replica has judged the topic's last
 *             record, and starts an engine (engine.ts) from the replica's state, on its engine port.
 *             Deposed or fenced: the engine stops; the replica goes on following.
 *   front     the public port (front.ts): any client batch goes to the leader's engine.
 *   faults    an invalid block or a wrong attestation is logged with its evidence and counted
 *             (txe_cluster_faults_total{kind}); a bad block's term is complained of in etcd, and
 *             once 2 validators (f + 1) complained, the leader of that term is deposed.
 *
 * TXE_TEST_BYZANTINE (tests only): 'wrong-state-hash' attests a wrong state hash for every block;
 * 'bad-block' publishes, on becoming leader, a block with a bad batch signature whose results say
 * it committed, before its engine starts.
 */

import fs from 'node:fs';
import path from 'node:path';
import crypto, { type KeyObject } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import kafkajs, { type Consumer, type Kafka as KafkaClient, type Producer } from 'kafkajs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isLoopbackHost, loadConfig, sequencerOptions, type EngineConfig } from '../config.js';
import { KeySet } from '../core/checks.js';
import { privateKeyFromSeed, publicKeyObject } from '../core/keys.js';
import { blockHash } from '../core/block.js';
import { BODY_BYTES, KIND_TRANSFER, writeBody } from '../core/record.js';
import { Result } from '../core/result.js';
import { Engine } from '../engine.js';
import { KafkaSink } from '../stages/commit/kafka/kafka-sink.js';
import { serialWrites } from '../stages/commit/kafka/open.js';
import { blockKey, decodeBlockRecord } from '../stages/commit/kafka/block-record.js';
import { Replica, type AppliedBlock } from './replica.js';
import { JudgeQueue } from './judge-queue.js';
import { Finality, VALIDATORS } from './finality.js';
import { SignedHeightFile } from './signed-height.js';
import { HeightWaiters } from './height-waiters.js';
import { attestationValid, decodeAttestation, encodeAttestation, signAttestation, type Attestation } from './attestation.js';
import { LeaderElection, type LeaderView } from './election.js';
import { FRONT_BATCHES_IN_FLIGHT_MAX, ValidatorFront } from './front.js';
import { AttestationPeers } from './attestation-peers.js';
import { startMetricsServer, type MetricsServer } from '../metrics/http.js';
import type { WriterTerm } from '../stages/commit/writer-term.js';
import { CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE } from '../services/security/certs.js';
import { clientCredentials, type ClientTls } from '../client.js';
import { FencedError } from '../stages/commit/writer-term.js';
import { TransportSecurity } from '../services/security/security.js';
import { checkForwardingCertificate, clusterClientTls, clusterTlsDir, type ClusterFile } from './cluster-file.js';

const { Kafka, logLevel } = kafkajs;

export interface ValidatorOptions { clusterFile: string; id: number; dataDir: string; seedFile: string; engineConfig?: Partial<Record<keyof EngineConfig, unknown>> }
type Log = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

const LEADER_POLL_MS = 200;
const CATCH_UP_WAIT_MS_MAX = 30_000;
const DEPOSE_QUORUM = 2; // f + 1 complaints: at least one honest validator saw the fault
// A fetch that finds nothing new waits this long at the broker, which answers as soon as a record
// arrives (minBytes 1): a long poll. At 20 ms, eight consumers polled all the time and an idle
// cluster burned 0.5 cores of this machine (0.38 at 500 ms); a new block's delivery does not wait for it.
const FETCH_WAIT_MS = 500;
// A broker that is starting up on a loaded machine can take over a second to accept a connection.
const KAFKA_CONNECT_TIMEOUT_MS = 5_000;
const TOPIC_READY_WAIT_MS_MAX = 30_000;
const STARTUP_CATCH_UP_WAIT_MS_MAX = 120_000; // then it campaigns anyway (an aborted tail can hide the last offsets)
const SEQUENCED_AT_KEPT = 65_536;
const JUDGE_QUEUE_BYTES_MAX = 32 * 1024 * 1024; // fetched, not judged yet: ~32 full blocks; then the next fetch waits
// Fine below 300 ms, where the finality target (p95 < 100 ms) and its tail are read.
const HOP_BUCKETS_S = [0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1, 2, 5];

export class Validator {
  private readonly replica: Replica;
  private readonly finality = new Finality();
  private readonly applied = new HeightWaiters(); // the replica's head height, for answers waiting on it
  private readonly signed: SignedHeightFile;
  private readonly validatorKeys: Map<number, KeyObject>;
  private readonly key: KeyObject;
  private readonly kafka: KafkaClient;
  private producer!: Producer;
  private blocksConsumer!: Consumer;
  private readonly judging = new JudgeQueue(JUDGE_QUEUE_BYTES_MAX, (error) => this.log('error', 'could not judge a block of the blocks topic; this validator stops following it', { error: error.message }));
  private attestationsConsumer!: Consumer;
  private election!: LeaderElection;
  private front!: ValidatorFront;
  private metrics!: MetricsServer;
  private engine: Engine | null = null;
  private leading: { term: number; sink: KafkaSink | null } | null = null;
  private leader: LeaderView | null = null;
  private nextOffset = 0; // of the blocks topic, past the last record judged
  private lastJudged: { number: number; hash: Buffer } = { number: 0, hash: Buffer.alloc(0) };
  private faults = 0;
  private readonly registry = new Registry();
  private readonly faultsCounter = new Counter({ name: 'txe_cluster_faults_total', help: 'faults this validator detected: invalid blocks, two blocks at one height, wrong or double attestations', labelNames: ['kind'], registers: [this.registry] });
  // Where finality's time goes, by hop: from the leader sequencing a block (its sequenced_at_ms) to
  // this validator applying it, to its attestation sent, and to the block being final here.
  private readonly hops = new Histogram({ name: 'txe_cluster_block_hop_seconds', help: 'from the leader sequencing a block to: fetched here from the blocks topic (read), applied here (applied), attested by this validator (attested), final here (final)', labelNames: ['hop'], buckets: HOP_BUCKETS_S, registers: [this.registry] });
  // Where an ack-FINAL batch's time goes at the front that took it: forwarded until the leader's
  // engine answered it durable (forward), then until its block was final here (final_wait).
  private readonly frontPhases = new Histogram({ name: 'txe_cluster_front_seconds', help: "an ack-FINAL batch at this validator's front: until the leader's engine answered it (forward), then until its block was final here (final_wait)", labelNames: ['phase'], buckets: HOP_BUCKETS_S, registers: [this.registry] });
  private readonly attestationsReceived = new Counter({ name: 'txe_cluster_attestations_received_total', help: 'attestations counted towards finality here, by the way each arrived first: the attestations topic (topic), straight from the validator that signed it (peer), or signed here (self)', labelNames: ['via'], registers: [this.registry] });
  private peers: AttestationPeers | null = null;
  private readonly sequencedAt = new Map<number, number>(); // height -> sequenced_at_ms, until final
  private readonly byzantine = process.env.TXE_TEST_BYZANTINE ?? '';
  private readonly engineConfig: EngineConfig;
  private readonly self: ClusterFile['validators'][number];
  private leaderPoll: NodeJS.Timeout | null = null;
  private readonly forwardTls: ClientTls | null;
  private readonly frontSecurity: TransportSecurity;
  private readonly trustedSigners: () => KeySet; // the keys file's signer; rotation (SIGHUP) is not wired for validators yet
  private closed = false;

  constructor(private readonly cluster: ClusterFile, private readonly options: ValidatorOptions, private readonly log: Log) {
    const self = cluster.validators.find((v) => v.id === options.id);
    if (!self) throw new Error(`validator ${options.id} is not in the cluster file`);
    this.self = self;
    const [host, port] = splitAddress(self.engine);
    const tls = clusterTlsDir(cluster, options.clusterFile);
    this.forwardTls = clusterClientTls(options.clusterFile, 'validator');
    if (this.forwardTls) checkForwardingCertificate(this.forwardTls);
    const engineTls = tls ? { tlsCertFile: path.join(tls, NODE_CERT_FILE), tlsKeyFile: path.join(tls, NODE_KEY_FILE), tlsClientCaFile: path.join(tls, CA_CERT_FILE) } : {};
    // The four fronts forward as one client (the validators' certificate): the leader's engine lets
    // that client have all of their batches in flight at once, and one more front's worth.
    const streamsPerClientMax = (VALIDATORS + 1) * FRONT_BATCHES_IN_FLIGHT_MAX;
    this.engineConfig = loadConfig({ grpcStreamsPerClientMax: streamsPerClientMax, ...options.engineConfig, ...engineTls, grpcHost: host, grpcPort: port, metricsPort: 0, sinks: [], kafkaBrokers: cluster.brokers, kafkaTopic: cluster.blocksTopic, kafkaReplicationFactor: cluster.replicationFactor, ack: 'durable' });
    // The front and metrics ports: the same TLS 1.3 identity as the engine, the callers' roles
    // checked at the front (a plaintext cluster keeps them on loopback: refused elsewhere).
    for (const address of [self.front, self.metrics]) {
      if (!tls && !isLoopbackHost(splitAddress(address)[0])) throw new Error(`validator ${options.id}: ${address} is not a loopback address, and the cluster has no TLS (tlsDir): clients there could not be authenticated`);
    }
    this.frontSecurity = new TransportSecurity(this.engineConfig, (level, message, fields) => log(level, `front: ${message}`, fields));
    this.frontSecurity.register(this.registry);
    // The process's own figures (txe_process_*: event-loop delay, GC, heap), as the engine has them:
    // a validator whose event loop stalls past its etcd lease's TTL loses the lead.
    collectDefaultMetrics({ register: this.registry, prefix: 'txe_process_', eventLoopMonitoringPrecision: 10 });
    const signers = new KeySet(this.engineConfig.trustedSigners.map((h) => Buffer.from(h, 'hex')));
    this.trustedSigners = () => signers;
    this.replica = new Replica({ sequencer: sequencerOptions(this.engineConfig), trustedSigners: this.trustedSigners });
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.signed = new SignedHeightFile(path.join(options.dataDir, `validator-${options.id}.signed-height`), path.join(options.dataDir, `validator-${options.id}.signed-height.json`));
    this.key = privateKeyFromSeed(Buffer.from(fs.readFileSync(options.seedFile, 'utf8').trim(), 'hex'));
    this.validatorKeys = new Map(cluster.validators.map((v) => [v.id, publicKeyObject(Buffer.from(v.publicKey, 'hex'))]));
    this.kafka = new Kafka({ clientId: `txe-validator-${options.id}`, brokers: cluster.brokers, logLevel: logLevel.NOTHING, connectionTimeout: KAFKA_CONNECT_TIMEOUT_MS, retry: { retries: 10, initialRetryTime: 50, maxRetryTime: 1_000 } });
  }

  async start(): Promise<void> {
    await this.createTopics();
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
    await this.followAttestations();
    await this.followBlocks();
    const [fhost, fport] = splitAddress(this.self.front);
    this.front = await ValidatorFront.start(fhost, fport, {
      leaderEngine: () => this.leader?.engine ?? null,
      trustedSigners: this.trustedSigners,
      waitFinal: (height, firstSeq, timeoutMs) => this.waitFinal(height, firstSeq, timeoutMs),
      status: () => this.status(),
      forwardCredentials: () => clientCredentials(this.forwardTls),
      observe: (phase, seconds) => this.frontPhases.observe({ phase }, seconds),
      attestation: (bytes) => this.receiveAttestation(bytes, 'peer'),
    }, this.engineConfig, this.frontSecurity);
    const others = this.cluster.validators.filter((v) => v.id !== this.options.id).map((v) => ({ id: v.id, front: v.frontVia ?? v.front }));
    this.peers = new AttestationPeers(others, clientCredentials(this.forwardTls), this.registry);
    this.registerGauges();
    const [mhost, mport] = splitAddress(this.self.metrics);
    this.metrics = await startMetricsServer(this.registry, mhost, mport, this.frontSecurity);
    this.election = new LeaderElection(this.cluster.etcd, this.cluster.name, { id: this.options.id, engine: this.self.engineVia ?? this.self.engine, front: this.self.front }, {
      elected: (term) => void this.lead(term).catch((e: Error) => { this.log('error', 'could not take the lead', { term, error: e.message }); this.election.resign(`lead failed: ${e.message}`); }),
      deposed: (why) => void this.stepDown(why),
    });
    // A validator that restarts on a long log campaigns once its replica has caught up with it,
    // so it is not elected while it still replays (lead() would wait for it, then resign).
    await this.caughtUpWithLog();
    this.election.start();
    this.leaderPoll = setInterval(() => void this.pollLeader(), LEADER_POLL_MS);
    await this.pollLeader();
    this.log('info', 'validator started', { id: this.options.id, front: `${this.self.front.split(':')[0]}:${this.front.port}`, signedHeight: this.signed.height });
  }

  status(): object {
    const head = this.replica.head;
    return {
      id: this.options.id, role: this.leading ? 'leader' : 'follower', term: Math.max(this.replica.term, this.leading?.term ?? 0, this.leader?.term ?? 0),
      height: head.height, finalHeight: this.finality.finalHeight, stateHash: head.stateHash, blockHash: head.hash, faults: this.faults, leaderId: this.leader?.id ?? 0,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.leaderPoll) clearInterval(this.leaderPoll);
    await this.stepDown('shutting down');
    await this.election?.close();
    await this.front?.close();
    this.peers?.close();
    await this.metrics?.close();
    this.frontSecurity.close();
    await Promise.allSettled([this.blocksConsumer?.disconnect(), this.attestationsConsumer?.disconnect(), this.producer?.disconnect()]);
    this.signed.close();
  }

  // ---- follow, judge, attest ----

  private async followBlocks(): Promise<void> {
    this.blocksConsumer = this.kafka.consumer({ groupId: `txe-validator-${this.options.id}-blocks-${crypto.randomBytes(4).toString('hex')}`, maxWaitTimeInMs: FETCH_WAIT_MS, readUncommitted: false, maxBytesPerPartition: 16 * 1024 * 1024, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    await this.blocksConsumer.connect();
    await this.blocksConsumer.subscribe({ topic: this.cluster.blocksTopic, fromBeginning: true });
    await this.blocksConsumer.run({
      autoCommit: false,
      // Judged in turn while kafkajs fetches the next (judge-queue.ts).
      eachBatch: async ({ batch }) => {
        const arrivedMs = Date.now();
        if (batch.messages.length > 0) this.nextOffset = Number(batch.lastOffset()) + 1;
        const values = batch.messages.map((m) => m.value!);
        const offset = batch.firstOffset();
        await this.judging.push(values.reduce((sum, v) => sum + v.length, 0), () => this.judgeFetch(values, arrivedMs).catch((e: Error) => { throw new Error(`the fetch from offset ${offset}: ${e.message}`); }));
      },
    });
  }

  /** Judges the blocks of one fetch in log order, then attests the ones it applied. */
  private async judgeFetch(values: Buffer[], arrivedMs: number): Promise<void> {
    const attest: AppliedBlock[] = [];
    const sequencedAtMs = new Map<number, number>(); // height -> of each block in `attest`: its hop times do not depend on when it became final
    for (const value of values) {
      const record = decodeBlockRecord(value);
      this.hops.observe({ hop: 'read' }, (arrivedMs - record.sequencedAtMs) / 1000);
      const judgement = this.replica.judge(record);
      this.lastJudged = { number: record.number, hash: record.hash };
      if (judgement.kind === 'applied') {
        attest.push(judgement.block);
        sequencedAtMs.set(record.number, record.sequencedAtMs);
        this.applied.reached(judgement.block.height);
        this.hops.observe({ hop: 'applied' }, (Date.now() - record.sequencedAtMs) / 1000);
        // Final already (the others' attestations came first): final here now that it is held here too.
        if (record.number <= this.finality.finalHeight) this.hops.observe({ hop: 'final' }, (Date.now() - record.sequencedAtMs) / 1000);
        else this.sequencedAt.set(record.number, record.sequencedAtMs);
        this.sequencedAt.delete(record.number - SEQUENCED_AT_KEPT); // bounded while finality stalls
      }
      else if (judgement.kind === 'fault') await this.fault(judgement.fault, judgement.why, record.epoch);
      // A fetch can bring many blocks (up to 16 MB), and judging one takes ~10-30 ms: judged back to
      // back they held the event loop for up to ~1 s under load, past a third of the etcd lease's
      // TTL, so a leader lost its lead. Other work runs between blocks.
      await setImmediate();
    }
    await this.attest(attest, sequencedAtMs);
  }

  private async attest(blocks: AppliedBlock[], sequencedAtMs: Map<number, number>): Promise<void> {
    const fresh = blocks.filter((b) => b.height > this.signed.height);
    for (const b of blocks) this.checkOthers(b);
    if (fresh.length === 0) return;
    const last = fresh[fresh.length - 1];
    await this.signed.advance({ height: last.height, blockHash: last.hash.toString('hex') });
    const messages = fresh.map((b) => {
      const stateHash = this.byzantine === 'wrong-state-hash' ? crypto.createHash('sha256').update(b.stateHash).digest() : b.stateHash;
      const a = signAttestation({ validator: this.options.id, height: b.height, blockHash: b.hash, stateHash, term: b.term }, this.key);
      return { key: blockKey(b.height), value: encodeAttestation(a) };
    });
    // Signed and its height persisted: counted here, handed to the other validators at once, and
    // written to the topic.
    for (const m of messages) this.receiveAttestation(m.value, 'self');
    this.peers?.push(messages.map((m) => m.value));
    await this.producer.send({ topic: this.cluster.attestationsTopic, messages, acks: -1 });
    for (const b of fresh) this.hops.observe({ hop: 'attested' }, (Date.now() - sequencedAtMs.get(b.height)!) / 1000);
  }

  private async followAttestations(): Promise<void> {
    this.attestationsConsumer = this.kafka.consumer({ groupId: `txe-validator-${this.options.id}-attestations-${crypto.randomBytes(4).toString('hex')}`, maxWaitTimeInMs: FETCH_WAIT_MS, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    await this.attestationsConsumer.connect();
    await this.attestationsConsumer.subscribe({ topic: this.cluster.attestationsTopic, fromBeginning: true });
    await this.attestationsConsumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => { this.receiveAttestation(message.value!, 'topic'); },
    });
  }

  /**
   * Counts one attestation, read from the topic, handed over by the validator that signed it, or
   * signed here (each arrives more than one way; the later ones are only checked for a
   * contradiction). Returns why it was refused, or null.
   */
  private receiveAttestation(bytes: Buffer, via: 'topic' | 'peer' | 'self'): string | null {
    const a = decodeAttestation(bytes);
    if (typeof a === 'string') return this.refuseAttestation('bad_attestation', a);
    const key = this.validatorKeys.get(a.validator);
    if (key === undefined || !attestationValid(a, key)) return this.refuseAttestation('bad_attestation', `an attestation for height ${a.height} claims validator ${a.validator} and its signature does not verify`);
    const counted = this.finality.has(a.validator, a.height);
    const before = this.finality.finalHeight;
    const fault = this.finality.add(a);
    if (fault) return this.refuseAttestation(fault.fault, fault.why);
    if (counted) return null;
    this.attestationsReceived.inc({ via });
    for (let h = before + 1; h <= this.finality.finalHeight; h++) {
      const at = this.sequencedAt.get(h);
      if (at !== undefined) this.hops.observe({ hop: 'final' }, (Date.now() - at) / 1000);
      this.sequencedAt.delete(h);
    }
    const mine = this.replica.at(a.height);
    if (mine) this.compare(mine, a);
    return null;
  }

  private refuseAttestation(kind: string, why: string): string {
    void this.fault(kind, why, null);
    return why;
  }

  /** When this replica applies a block, the attestations that came before it are compared too. */
  private checkOthers(b: AppliedBlock): void {
    for (const a of this.finality.attestationsAt(b.height)) this.compare(b, a);
  }

  private compare(mine: AppliedBlock, a: Attestation): void {
    if (a.validator === this.options.id) return;
    if (!a.blockHash.equals(mine.hash)) void this.fault('wrong_attestation', `validator ${a.validator} attested block hash ${a.blockHash.toString('hex')} at height ${a.height}; this replica applied ${mine.hash.toString('hex')}`, null);
    else if (!a.stateHash.equals(mine.stateHash)) void this.fault('wrong_attestation', `validator ${a.validator} attested state hash ${a.stateHash.toString('hex')} at height ${a.height}; this replica computed ${mine.stateHash.toString('hex')}`, null);
  }

  private async fault(kind: string, why: string, term: number | null): Promise<void> {
    this.faults++;
    this.faultsCounter.inc({ kind });
    this.log('warn', 'fault detected', { kind, evidence: why, term });
    if (term === null || kind === 'two_blocks_at_height' && term < this.replica.term) return;
    try {
      const complaints = await this.election.complain(term, why);
      if (complaints >= DEPOSE_QUORUM && await this.election.depose(term)) this.log('warn', 'deposed the leader of a faulty term', { term, complaints });
    } catch (error) {
      this.log('warn', 'could not complain of the faulty leader in etcd', { term, error: (error as Error).message });
    }
  }

  /**
   * Resolves once block `height` is final and this replica holds that very block. The replica
   * applies a block before this validator can count its own attestation, but the others' may
   * finalize it first, so both heights are waited for. A batch with no accepted transaction is
   * answered with first_seq 0: then only the height is compared.
   */
  private async waitFinal(height: number, firstSeq: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.finality.waitFinal(height, timeoutMs);
    await this.applied.wait(height, Math.max(1, deadline - Date.now()), `not applied here after ${timeoutMs} ms`);
    const mine = this.replica.at(height);
    if (mine === undefined || mine.hash.toString('hex') !== this.finality.finalHash(height) || (firstSeq !== 0 && mine.firstSeq !== firstSeq)) {
      throw new Error(`the final block at height ${height} is not the one the leader answered with (first seq ${firstSeq})`);
    }
  }

  // ---- leading ----

  private async pollLeader(): Promise<void> {
    try {
      this.leader = await this.election.leader();
    } catch {
      this.leader = null;
    }
    this.front?.setServing(this.leader !== null);
  }

  private async lead(term: number): Promise<void> {
    if (this.closed) return;
    this.leading = { term, sink: null };
    const wterm: WriterTerm = { epoch: term, confirm: async () => { const now = await this.election.leader(); if (now?.term !== term) throw new FencedError(term, now?.term ?? null, 'etcd names another leader'); } };
    const sink = serialWrites(await KafkaSink.open({ brokers: this.cluster.brokers, topic: this.cluster.blocksTopic, clientId: `txe-validator-${this.options.id}`, connectionTimeoutMs: 3_000, requestTimeoutMs: 10_000, term: wterm, replicationFactor: this.cluster.replicationFactor, logLevel: logLevel.NOTHING }));
    if (this.leading?.term !== term) { await sink.close(); return; }
    this.leading.sink = sink;
    await this.catchUp(sink.lastPublishedBlock, sink.lastPublishedHash);
    const head = this.replica.head;
    if (sink.lastPublishedBlock > head.height) {
      this.log('warn', 'the topic ends with blocks this replica refused; the next block replaces them', { topicEnd: sink.lastPublishedBlock, height: head.height });
      sink.continueAfter(head.height, head.hash);
    }
    if (this.byzantine === 'bad-block') await this.publishBadBlock(sink, term);
    this.replica.checkInvariants();
    const engine = await Engine.start(this.engineConfig, {
      onFenced: (e) => { this.log('warn', 'fenced: another leader writes now', { error: e.message }); this.election.resign('fenced'); },
      onFatal: (e) => { this.log('error', 'leader engine failed', { error: e.message }); this.election.resign('engine failed'); },
      onSinkDown: (e) => this.log('warn', 'the log is failing: refusing batches with UNAVAILABLE, retrying', { error: e.message }),
      onSinkUp: () => this.log('info', 'the log takes blocks again'),
      log: (level, message, fields) => this.log(level, message, fields),
    }, { sink, state: this.replica.exportState() });
    if (this.leading?.term !== term) { await engine.stop(); return; }
    this.engine = engine;
    this.log('info', 'leading', { term, height: head.height, engine: engine.address });
  }

  /**
   * Waits until the blocks consumer has passed the offsets the topic had at start (its last
   * record, and the commit marker after it), or STARTUP_CATCH_UP_WAIT_MS_MAX.
   */
  private async caughtUpWithLog(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    let high = 0;
    try {
      high = Number((await admin.fetchTopicOffsets(this.cluster.blocksTopic))[0]?.high ?? 0);
    } finally {
      await admin.disconnect();
    }
    const started = Date.now();
    while (high > 0 && (this.nextOffset < high - 1 || this.judging.queuedBytes > 0) && Date.now() - started < STARTUP_CATCH_UP_WAIT_MS_MAX) await new Promise((r) => setTimeout(r, 50));
    if (high > 0) this.log('info', 'replayed the log', { height: this.replica.head.height, ms: Date.now() - started });
  }

  /** Waits until the replica has judged the topic's last record (number and hash). */
  private async catchUp(number: number, hash: Buffer): Promise<void> {
    const deadline = Date.now() + CATCH_UP_WAIT_MS_MAX;
    while (number > 0 && !(this.lastJudged.number === number && this.lastJudged.hash.equals(hash))) {
      if (Date.now() > deadline) throw new Error(`replica did not reach the topic's last block ${number} within ${CATCH_UP_WAIT_MS_MAX} ms (at ${this.lastJudged.number})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async stepDown(why: string): Promise<void> {
    const was = this.leading;
    this.leading = null;
    const engine = this.engine;
    this.engine = null;
    if (engine) await engine.stop().catch(() => undefined);
    else if (was?.sink) await was.sink.close().catch(() => undefined);
    if (was) this.log('info', 'no longer leading', { term: was.term, why });
  }

  /** TXE_TEST_BYZANTINE=bad-block: a transfer from an account with nothing, under a forged batch signature, recorded as committed. */
  private async publishBadBlock(sink: KafkaSink, term: number): Promise<void> {
    const head = this.replica.head;
    const bodies = Buffer.alloc(BODY_BYTES);
    writeBody(bodies, 0, { kind: KIND_TRANSFER, sender: crypto.randomBytes(32), recipient: crypto.randomBytes(32), nonce: 1n, amount: 1_000_000n, timestampMs: BigInt(Date.now()), memo: Buffer.alloc(32) });
    const digest = crypto.createHash('sha256').update(bodies).digest();
    const results = Buffer.from([Result.committed]);
    const number = head.height + 1;
    const firstSeq = this.replica.nextSeq;
    const hash = blockHash(head.hash, number, firstSeq, 1, results, digest);
    const signer = Buffer.from(this.engineConfig.trustedSigners[0] ?? '00'.repeat(32), 'hex');
    const record = { number, firstSeq, entries: 1, txs: 1, hash, prevHash: head.hash, bodiesDigest: digest, results, bodies, sequencedAtMs: Date.now(), epoch: term, auth: { mode: 'batch-signed' as const, signer, signature: crypto.randomBytes(64) } };
    await sink.publishRecords([record]);
    sink.continueAfter(head.height, head.hash);
    this.log('warn', 'TXE_TEST_BYZANTINE=bad-block: published a forged block', { number, hash: hash.toString('hex') });
  }

  /**
   * Both topics, created by whichever validator comes first. One that another validator created a
   * moment ago may not be known to every node yet (UNKNOWN_TOPIC_OR_PARTITION): then again, a while.
   */
  private async createTopics(): Promise<void> {
    const deadline = Date.now() + TOPIC_READY_WAIT_MS_MAX;
    for (;;) {
      try {
        // Both with the blocks topic's settings: one partition, kept forever (a validator replays
        // the attestations from the start to count finality from height 1), acks from RF - 1.
        for (const topic of [this.cluster.blocksTopic, this.cluster.attestationsTopic]) {
          await KafkaSink.createTopic({ brokers: this.cluster.brokers, topic, clientId: `txe-validator-${this.options.id}`, connectionTimeoutMs: 3_000, requestTimeoutMs: 10_000, term: { epoch: 1, confirm: async () => undefined }, replicationFactor: this.cluster.replicationFactor, logLevel: logLevel.NOTHING });
        }
        await this.topicsLed();
        return;
      } catch (error) {
        if (Date.now() > deadline || !/does not host this topic-partition|UNKNOWN_TOPIC|LEADER_NOT_AVAILABLE|no partition leader|There is no leader/i.test((error as Error).message)) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Waits until both topics have a partition leader (one another validator just created may not yet). */
  private async topicsLed(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // Another validator may have created them a moment ago: wait until both have a leader.
      const deadline = Date.now() + TOPIC_READY_WAIT_MS_MAX;
      for (;;) {
        const meta = await admin.fetchTopicMetadata({ topics: [this.cluster.blocksTopic, this.cluster.attestationsTopic] }).catch(() => null);
        if (meta?.topics.every((t) => t.partitions.length === 1 && t.partitions[0].leader >= 0)) break;
        if (Date.now() > deadline) throw new Error(`topics ${this.cluster.blocksTopic} and ${this.cluster.attestationsTopic} have no partition leader after ${TOPIC_READY_WAIT_MS_MAX} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await admin.disconnect();
    }
  }

  private registerGauges(): void {
    const self = this;
    new Gauge({ name: 'txe_cluster_final_height', help: 'every block up to here is final (3 of 4 attested it)', registers: [this.registry], collect() { this.set(self.finality.finalHeight); } });
    new Gauge({ name: 'txe_cluster_applied_height', help: 'last block this validator verified and applied', registers: [this.registry], collect() { this.set(self.replica.head.height); } });
    new Gauge({ name: 'txe_cluster_leader', help: '1 while this validator leads', registers: [this.registry], collect() { this.set(self.leading ? 1 : 0); } });
    new Gauge({ name: 'txe_cluster_term', help: 'highest term seen', registers: [this.registry], collect() { this.set(self.replica.term); } });
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}
