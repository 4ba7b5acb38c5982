// Proves that a StreamCommits reader which stops reading at the socket costs the engine a bounded
// amount of memory however many blocks are cut meanwhile, and that the engine drops it with
// RESOURCE_EXHAUSTED after subscriberStallMsMax, freeing its reader slot. The reader connects
// through a TCP proxy that stops reading from the engine: the engine's socket backs up in the
// kernel, as with a client whose process hangs, not only at the gRPC layer.
import v8 from 'node:v8';
import vm from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../engine/engine.js';
import { TxeClient } from '../../../engine/client.js';
import { mint, signedBatch, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';
import { withTimeout } from '../../support/async.js';
import { tcpProxy } from '../../support/tcp-proxy.js';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

const BATCHES = 200;
const TXS = 4096; // 512 KB of entry bodies a block: 100 MB in all
const STALL_MS_MAX = 6000;
const MIB = 1024 * 1024;

let engine: Engine;
let client: TxeClient;
let stop: () => Promise<void>;

beforeAll(async () => ({ engine, client, stop } = await startTestEngine({ historyEntriesMax: 1 << 16, subscribersMax: 1, subscriberStallMsMax: STALL_MS_MAX })));
afterAll(async () => stop());

/** Opens StreamCommits readers until one registers (headers) instead of being refused; when it did. */
async function untilReaderRegisters(): Promise<number> {
  for (;;) {
    const call = client.streamCommits(0);
    const outcome = await new Promise<'registered' | 'refused'>((resolve) => {
      call.once('metadata', () => resolve('registered'));
      call.on('error', (e: grpc.ServiceError) => { if (e.code === grpc.status.RESOURCE_EXHAUSTED) resolve('refused'); });
    });
    if (outcome === 'registered') {
      call.cancel();
      return Date.now();
    }
    await new Promise((r) => setTimeout(r, 200)); // a retry interval, not a guess at timing: the signal is the registration
  }
}

function arrayBuffersMiB(): number {
  gc();
  return process.memoryUsage().arrayBuffers / MIB;
}

describe('a StreamCommits reader stalled at the socket', () => {
  it('holds a bounded amount of the engine\'s memory while blocks are cut, then is dropped with RESOURCE_EXHAUSTED', async () => {
    const proxy = await tcpProxy(engine.address.slice(0, engine.address.lastIndexOf(':')), Number(engine.address.slice(engine.address.lastIndexOf(':') + 1)));
    const reader = new TxeClient(proxy.address);
    const call = reader.streamCommits(0);
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => undefined);
    await withTimeout(new Promise((resolve) => call.once('metadata', resolve)), 5000, 'StreamCommits headers');
    proxy.stall();
    const before = arrayBuffersMiB();
    const recipient = user('stalled').publicKey;
    const startedMs = Date.now();
    for (let b = 0; b < BATCHES; b++) {
      const records = Array.from({ length: TXS }, (_, i) => mint(recipient, BigInt(b * TXS + i + 1), 1n));
      const answer = await client.submitBatch(signedBatch(records));
      expect(answer.accepted).toBe(TXS);
    }
    expect(Date.now() - startedMs).toBeLessThan(STALL_MS_MAX); // the load ended before the reader could be dropped
    const grownMiB = arrayBuffersMiB() - before;
    // ~100 MB of blocks were cut; the reader may hold 16 messages (8 MB) and what HTTP/2 had sent
    // into the stalled socket. Writing a block on every cut held all 100 MB.
    expect(grownMiB).toBeLessThan(50);

    // subscribersMax is 1: a second reader is refused until the engine drops the stalled one.
    const droppedAtMs = await withTimeout(untilReaderRegisters(), STALL_MS_MAX + 10_000, 'the stalled reader dropped');
    expect(droppedAtMs - startedMs).toBeGreaterThanOrEqual(STALL_MS_MAX - 1000);
    expect(arrayBuffersMiB() - before).toBeLessThan(25); // its stream's buffers are freed, though its socket is still stalled

    proxy.resume(); // what the engine had sent arrives now, then the RST_STREAM
    const error = await withTimeout(ended, 10_000, 'the stalled reader learns it was dropped');
    expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error.details).toMatch(/Bandwidth exhausted or memory limit exceeded/); // HTTP/2 ENHANCE_YOUR_CALM, as gRPC maps it
    reader.close();
    await proxy.close();
  }, 60_000);
});
