// Proves that calls which send all but the last byte of a large message cannot hold the engine's
// memory: over a raw HTTP/2 connection, calls to SubmitBatch each send a gRPC prefix that claims a
// ~1.5 MB message and all of it but one byte. Past the per-connection budget the engine resets the
// call that would cross it (ENHANCE_YOUR_CALM), the engine's buffers stay bounded, and a well-
// behaved client keeps being served meanwhile. Loopback only.
import http2 from 'node:http2';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxeClient } from '../../../engine/client.js';
import type { Engine } from '../../../engine/engine.js';
import { mint, signedBatch, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';
import { withTimeout } from '../../support/async.js';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

const MIB = 1024 * 1024;
const CLAIMED_BYTES = 1_500_000; // under the engine's message limit, so only the budget stops it
const PER_CONNECTION_MAX = 8 * MIB; // five unfinished messages fit, the sixth does not
const CALLS = 40; // ~60 MB of unfinished messages offered on one connection

let engine: Engine;
let client: TxeClient;
let stop: () => Promise<void>;

beforeAll(async () => ({ engine, client, stop } = await startTestEngine({
  batchTxsMax: 8190, ringSlotsMax: 1 << 14, grpcPartialMessageBytesPerConnectionMax: PER_CONNECTION_MAX, grpcPartialMessageBytesMax: 64 * MIB,
})));
afterAll(async () => stop());

const ALL_BUT_LAST_BYTE = Buffer.alloc(CLAIMED_BYTES - 1, 0x08);
const arrayBuffersMiB = () => { gc(); return process.memoryUsage().arrayBuffers / MIB; };

/** A call that sends a prefix claiming CLAIMED_BYTES and all of the message but its last byte; resolves with its RST code. */
function unfinishedCall(session: http2.ClientHttp2Session): Promise<number> {
  const stream = session.request({
    ':method': 'POST', ':path': '/txe.v1.TransactionService/SubmitBatch', 'content-type': 'application/grpc', te: 'trailers',
  });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(CLAIMED_BYTES, 1);
  stream.write(prefix);
  stream.write(ALL_BUT_LAST_BYTE); // one buffer for every call: the attacker's side costs this process little
  stream.on('error', () => undefined);
  stream.on('response', () => undefined);
  stream.resume();
  return new Promise((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)));
}

describe('unfinished messages', () => {
  it('reset past the per-connection budget, with the engine\'s buffers bounded and other clients served', async () => {
    const before = arrayBuffersMiB();
    const session = http2.connect(`http://${engine.address}`);
    session.on('error', () => undefined);
    const calls = Array.from({ length: CALLS }, () => unfinishedCall(session));
    // Resets arrive for every call past the budget; the first ones stay open, holding their bytes.
    const reset = await withTimeout(new Promise<number>((resolve) => {
      let count = 0;
      for (const c of calls) void c.then((code) => { if (code === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM && ++count === CALLS - 5) resolve(count); });
    }), 20_000, 'resets of the calls past the budget');
    expect(reset).toBe(CALLS - 5);
    const held = arrayBuffersMiB() - before;
    expect(held).toBeLessThan(30); // ~7 MB held in unfinished messages, not the ~60 MB offered
    const answer = await client.submitBatch(signedBatch([mint(user('partial').publicKey, 1n, 1n)]));
    expect(answer.accepted).toBe(1);
    session.destroy();
    await Promise.all(calls);
  }, 60_000);
});
