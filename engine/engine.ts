/*
 * The engine: the pipeline behind its gRPC ingress, with a graceful shutdown. On stop it reports
 * NOT_SERVING, refuses new batches, lets every admitted batch be answered, then exits.
 */

import type { EngineConfig } from './config.js';
import { Pipeline } from './pipeline.js';
import { startIngress, type IngressServer } from './ingress/server.js';
import type { Sink } from './commit/sink.js';
import { SERVICE_NAME } from './ingress/codec.js';

export class Engine {
  private constructor(readonly config: EngineConfig, readonly pipeline: Pipeline, readonly ingress: IngressServer) {}

  static async start(config: EngineConfig, sinks: Sink[] = []): Promise<Engine> {
    const pipeline = new Pipeline(config, sinks);
    try {
      const ingress = await startIngress(pipeline, config);
      return new Engine(config, pipeline, ingress);
    } catch (error) {
      await pipeline.close();
      throw error;
    }
  }

  get port(): number { return this.ingress.port; }
  get address(): string { return `${this.config.grpcHost}:${this.ingress.port}`; }

  async stop(): Promise<void> {
    const { server, service, health } = this.ingress;
    health.setStatus('', 'NOT_SERVING');
    health.setStatus(SERVICE_NAME, 'NOT_SERVING');
    service.beginDrain();
    await this.pipeline.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, this.config.shutdownGraceMs);
      server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }
}
