/*
 * The engine: the pipeline behind its gRPC ingress, with a graceful shutdown. On stop it reports
 * NOT_SERVING, refuses new batches, lets every admitted batch be answered, then exits.
 */

import { sequencerOptions, snapshotsOn, type EngineConfig } from './config.js';
import { Sequencer, type SequencerState } from './core/sequencer.js';
import { HistoryWindow } from './stages/history/history-window.js';
import { Pipeline, type PipelineHooks } from './pipeline.js';
import { startIngress, type IngressServer } from './services/grpc/server.js';
import type { Sink } from './stages/commit/sink.js';
import { PgSink } from './stages/commit/pg/pg-sink.js';
import { SnapshotWriter } from './stages/commit/pg/snapshots.js';
import { PgReads } from './stages/commit/pg/pg-reads.js';
import { recover, type RecoveryReport } from './recovery/recovery.js';
import { SERVICE_NAME } from './services/grpc/codec.js';
import { startMetricsServer, type MetricsServer } from './metrics/http.js';
import { Approvals } from './services/approvals/approvals.js';
import type { Webhooks } from './services/webhooks/webhooks.js';
import { TransportSecurity } from './services/security/security.js';
import type { KeyRotation } from './core/rotating-keys.js';

/*
 * Node flags a serving engine and the load generator run with (the `txe` bin's first line, the npm
 * scripts, and every engine and null-server process that txe bench and the tests start). Each batch arrives in buffers that live off the V8 heap (~2 MB a
 * batch from HTTP/2 and grpc-js, 200+ MB/s at 1M TPS). V8 counts that external memory against a
 * limit derived from the old generation; with the engine's ~15 MB heap the limit stays small, and
 * V8 ran a full mark-compact every 40-100 ms, 4-13 ms each on the main thread: 138 in a 10 s run
 * at 900k TPS, p95 22.6 ms. Starting the old generation at 128 MB left 6 (bench/RESULTS.md,
 * session 4). It only moves the limit: resident memory was the same (306-313 MB). txe bench's own
 * process receives the answers the same way: without the flag it ran 163 full GCs in a run at
 * 1.2M TPS, and its late sends and reads put p95 at 15.5 ms instead of 6.8 ms.
 */
export const ENGINE_NODE_FLAGS = ['--initial-old-space-size=128'] as const;

/**
 * A cluster leader's engine (engine/cluster/validator.ts): its Kafka sink already open under the
 * leader's term, and the state its replica verified up to the log's end. No PostgreSQL: the log
 * and the validators' replicas are the history.
 */
export interface ClusterStart { sink: Sink; state: SequencerState }

export class Engine {
  private constructor(readonly config: EngineConfig, readonly pipeline: Pipeline, readonly ingress: IngressServer, readonly recovery: RecoveryReport | null,
    readonly metrics: MetricsServer, readonly approvals: Approvals, readonly webhooks: Webhooks | null, private readonly durable: PgReads | null,
    readonly security: TransportSecurity) {}

  /** Opens the configured sinks, recovers state from them, then starts serving. */
  static async start(config: EngineConfig, userHooks: PipelineHooks = {}, cluster: ClusterStart | null = null): Promise<Engine> {
    // TLS files and tokens are checked first: a bad certificate fails the start before any store is touched.
    const security = new TransportSecurity(config, userHooks.log);
    const sinks: Sink[] = [];
    let ingressStarted: IngressServer | null = null;
    // A fenced engine says so to load balancers and health checks at once (writer-term.ts).
    const hooks: PipelineHooks = { ...userHooks, onFenced: (error) => { ingressStarted?.health.setStatus('', 'NOT_SERVING'); ingressStarted?.health.setStatus(SERVICE_NAME, 'NOT_SERVING'); userHooks.onFenced?.(error); } };
    let pipeline: Pipeline | null = null;
    let approvals: Approvals | null = null;
    let webhooks: Webhooks | null = null;
    let durable: PgReads | null = null;
    try {
      if (cluster) sinks.push(cluster.sink);
      const pg = !cluster && config.sinks.includes('pg') ? await PgSink.open({ url: config.pgUrl, connectTimeoutMs: config.sinkConnectTimeoutMs, statementTimeoutMs: config.sinkStatementTimeoutMs, senderNonceIndex: config.pgSenderNonceIndex, writeConnectionsMax: config.pgWriteConnectionsMax }) : null;
      if (pg) sinks.push(pg);
      // kafkajs loads only where Kafka is configured.
      const kafka = pg && config.sinks.includes('kafka') ? await (await import('./stages/commit/kafka/open.js')).openKafkaSink(config, pg.term) : null;
      if (kafka) sinks.push(kafka);
      // Recovery rebuilds state and history on this thread through core/; the sequencer thread
      // then starts from the exported state.
      const history = new HistoryWindow(config.historyEntriesMax, config.historyBlocksMax);
      const replica = new Sequencer(sequencerOptions(config));
      const recovery = pg ? await recover(replica, history, config.pgUrl, pg, kafka, config.sinkStatementTimeoutMs, config) : null;
      const snapshots = pg && snapshotsOn(config) ? new SnapshotWriter(config.pgUrl, config.sinkStatementTimeoutMs, pg.epoch) : null;
      if (cluster) history.startAfter(cluster.state.nextSeq, cluster.state.block);
      pipeline = new Pipeline(config, sinks, hooks, { state: cluster ? cluster.state : pg ? replica.exportState() : null, history, snapshots });
      approvals = await Approvals.open(pipeline, config, hooks.log, replica.pending);
      // Webhooks keep their state in PostgreSQL and queue events through Kafka: only with both.
      if (config.webhooks && pg && kafka) webhooks = await (await import('./services/webhooks/webhooks.js')).Webhooks.open(pipeline, config, hooks.log);
      durable = pg ? new PgReads(config.pgUrl, config) : null;
      security.register(pipeline.metrics.registry);
      const ingress = await startIngress(pipeline, config, approvals, webhooks, durable, security);
      ingressStarted = ingress;
      const metrics = await startMetricsServer(pipeline.metrics.registry, config.metricsHost, config.metricsPort, security).catch(async (error: Error) => {
        ingress.server.forceShutdown();
        throw error;
      });
      return new Engine(config, pipeline, ingress, recovery, metrics, approvals, webhooks, durable, security);
    } catch (error) {
      security.close();
      await durable?.close();
      await webhooks?.close();
      await approvals?.close();
      if (pipeline) await pipeline.close(0);
      await Promise.all(sinks.map((s) => s.close()));
      throw error;
    }
  }

  get port(): number { return this.ingress.port; }
  get address(): string { return `${this.config.grpcHost}:${this.ingress.port}`; }

  async stop(): Promise<void> {
    const { server, service, stats, health } = this.ingress;
    health.setStatus('', 'NOT_SERVING');
    stats.endAll();
    this.ingress.approvals.endAll();
    await this.webhooks?.close();
    await this.approvals.close();
    health.setStatus(SERVICE_NAME, 'NOT_SERVING');
    service.beginShutdown();
    await this.pipeline.close(this.config.shutdownGraceMs);
    await this.pipeline.closeSinks();
    await this.metrics.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, this.config.shutdownGraceMs);
      server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
    await this.durable?.close();
    this.security.close();
  }

  /**
   * Trusts these batch signers from now on (SIGHUP after a new keys file); signers dropped stay
   * trusted for trustedSignerGraceMs. Logged, and counted in txe_key_rotations_total{key="batch_signer"}.
   */
  rotateTrustedSigners(hexes: string[], log: PipelineHooks['log'] = () => undefined): void {
    this.rotated('batch_signer', 'batch signers', this.pipeline.rotateTrustedSigners(hexes, this.config.trustedSignerGraceMs), log);
  }

  /** Issuers that may mint from now on (SIGHUP); dropped ones may for issuerGraceMs more. Logged and counted. */
  rotateIssuers(hexes: string[], log: PipelineHooks['log'] = () => undefined): void {
    this.rotated('issuer', 'issuers', this.pipeline.rotateIssuers(hexes, this.config.issuerGraceMs), log);
  }

  /** A rotation that changed something: counted in txe_key_rotations_total{key} and logged. */
  private rotated(key: 'batch_signer' | 'issuer', what: string, r: KeyRotation, log: PipelineHooks['log']): void {
    if (r.added.length === 0 && r.retiring.length === 0) return;
    this.security.countRotation(key);
    log?.('info', `${what} rotated: the added ones are valid now, the retiring ones until retiredAt`, { added: r.added, retiring: r.retiring, retiredAt: new Date(r.retiredAtMs).toISOString() });
  }

  /** Reads the TLS certificate files again (SIGHUP); false when there is no TLS or they are not valid. */
  reloadTls(): boolean {
    return this.security.reload();
  }
}
