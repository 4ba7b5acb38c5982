/*
 * The load generator's own ceiling, measured in the same run as the figures it bounds: the exact
 * load plan of the run (same streams, lanes, batch size, mode and pre-built batches) driven closed
 * loop for a short window against the null server (null-server.ts), a process of its own that
 * answers every batch at once. Whatever rate this reaches is the most the generator can offer on
 * this machine through real loopback gRPC; a run against an engine that comes close to it says
 * more about the generator than about the engine. It is closed loop even when the run is open loop
 * (--rate N): the ceiling is the most the generator can offer, which the offered rate is held to.
 * Lanes start again at their first round when they run out, which the null server does not mind.
 *
 * Cost: a process start (~0.3 s), 0.5 s of warm-up and the window (default 3 s), once per run,
 * before the clock of the run starts; no memory beyond the plan, which is reused as it is.
 */

import type * as grpc from '@grpc/grpc-js';
import { TxeClient } from '../engine/client.js';
import { distFile } from '../engine/paths.js';
import type { PlannedBatch } from './loadgen/wire.js';
import { startListeningProcess } from './engine-process.js';
import { ENGINE_NODE_FLAGS } from '../engine/engine.js';
import { cpuSnapshot, coresBetween } from './cpu.js';
import { drive } from './loadgen/driver.js';

export interface LoadgenCeiling {
  ceilingTps: number; // transactions answered per second by the null server
  windowS: number; // measured seconds
  loadgenCores: number; // CPU cores the generator used meanwhile
  eventLoopUtilization: number; // the generator's event loop, busy share of the window
  nullServerCores: number | null;
}

export interface LoadgenCeilingOptions {
  windowS: number;
  warmupS: number; // connect, JIT and fill the pipeline before measuring
  streams: number;
  channelOptions: grpc.ChannelOptions; // the run's own client settings
}

export async function measureLoadgenCeiling(lanesPlan: PlannedBatch[][], o: LoadgenCeilingOptions): Promise<LoadgenCeiling> {
  if (!(o.windowS > 0)) throw new Error(`load generator ceiling window must be > 0 s, got ${o.windowS}`);
  const server = await startListeningProcess('null server', [...ENGINE_NODE_FLAGS, distFile('bench/null-server-main.js')]);
  const client = new TxeClient(server.address, o.channelOptions);
  try {
    await client.waitReady(10_000);
    const pid = server.child.pid ?? null;
    let cpuStart = cpuSnapshot(pid);
    const result = await drive(client, lanesPlan, {
      streams: o.streams, rateTps: 'max', durationS: o.windowS, warmupS: o.warmupS, retryBackoffMs: 2, cycle: true,
      onMeasureStart: () => { cpuStart = cpuSnapshot(pid); },
    });
    const cpu = coresBetween(cpuStart, cpuSnapshot(pid));
    if (result.errors > 0) throw new Error(`the null server answered ${result.errors} batches with an error (${JSON.stringify(result.errorsByStatus)}): the ceiling would be wrong`);
    return { ceilingTps: result.txsCommitted / result.durationS, windowS: result.durationS, loadgenCores: cpu.loadgen, eventLoopUtilization: result.eventLoopUtilization, nullServerCores: cpu.engine };
  } finally {
    client.close();
    await server.stop();
  }
}
