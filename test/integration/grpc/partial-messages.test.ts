// Proves that calls which send all but the last byte of a large message cannot hold the engine's
// memory: over a raw HTTP/2 connection, calls to SubmitBatch each send a gRPC prefix that claims a
// ~1.5 MB message and all of it but one byte. Past the per-connection budget the engine resets the
// call that would cross it (ENHANCE_YOUR_CALM), the engine's buffers stay bounded, and a well-
// behaved client keeps being served meanwhile. Past the per-client budget, a client spreading such
// calls over several connections is reset too, so it cannot fill the total budget and get another
// client's large message reset. Loopback only; the second client comes from 127.0.0.2.
import http2 from 'node:http2';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxeClient } from '../../../engine/client.js';
import type { Engine } from '../../../engine/engine.js';
import { mint, signedBatch, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';
import { until, withTimeout } from '../../support/async.js';
import { toWireRequest } from '../../../engine/client.js';
import { TransactionServiceDefinition } from '../../../engine/services/grpc/codec.js';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

const MIB = 1024 * 1024;
const CLAIMED_BYTES = 1_500_000; // under the engine's message limit, so only the budget stops it
const PER_CONNECTION_MAX = 8 * MIB; // five unfinished messages fit, the sixth does not
const CALLS = 40; // ~60 MB of unfinished messages offered on one connection
const PER_CLIENT_MAX = 12 * MIB; // eight unfinished messages fit, on any number of connections
const TOTAL_MAX = 16 * MIB; // without the per-client bound, one client could fill it alone
const STREAMS_PER_CLIENT_MAX = 48; // above what the tests before open at once

let engine: Engine;
let client: TxeClient;
let stop: () => Promise<void>;

beforeAll(async () => ({ engine, client, stop } = await startTestEngine({
  batchTxsMax: 8190, ringSlotsMax: 1 << 14, grpcPartialMessageBytesPerConnectionMax: PER_CONNECTION_MAX,
  grpcPartialMessageBytesPerClientMax: PER_CLIENT_MAX, grpcPartialMessageBytesMax: TOTAL_MAX, grpcStreamsPerClientMax: STREAMS_PER_CLIENT_MAX,
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

  it('reset past the per-client budget across connections, so another client\'s large message still fits', async () => {
    const [host, port] = [engine.address.slice(0, engine.address.lastIndexOf(':')), Number(engine.address.slice(engine.address.lastIndexOf(':') + 1))];
    const sessions = [0, 1, 2].map(() => http2.connect(`http://${engine.address}`));
    for (const s of sessions) s.on('error', () => undefined);
    // Five a connection would fit the per-connection budget: 15 held in all, ~22 MB, past the total.
    const calls = sessions.flatMap((s) => Array.from({ length: 5 }, () => unfinishedCall(s)));
    const resets = await withTimeout(new Promise<number>((resolve) => {
      let count = 0;
      for (const c of calls) void c.then((code) => { if (code === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM && ++count === calls.length - 8) resolve(count); });
    }), 20_000, 'resets of the calls past the per-client budget');
    expect(resets).toBe(calls.length - 8); // eight held (12 MB), the rest reset

    // Another client (another address) sends a real batch in two parts around the first client's
    // eight held messages; its ~1 MB fits in what the total has left, and it is answered.
    const other = http2.connect(`http://${engine.address}`, { createConnection: () => net.connect({ host, port, localAddress: '127.0.0.2' }) });
    other.on('error', () => undefined);
    const batch = signedBatch(Array.from({ length: 8000 }, (_, i) => mint(user('partial-other').publicKey, BigInt(i + 2), 1n)));
    const message = encodeSubmit(batch);
    const stream = other.request({ ':method': 'POST', ':path': '/txe.v1.TransactionService/SubmitBatch', 'content-type': 'application/grpc', te: 'trailers' });
    const trailers = new Promise<string>((resolve) => stream.on('trailers', (t) => resolve(String(t['grpc-status']))));
    const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)));
    stream.on('error', () => undefined);
    stream.resume();
    stream.write(message.subarray(0, message.length - 1));
    await new Promise((r) => setTimeout(r, 200)); // its partial message is held beside the first client's
    stream.end(message.subarray(message.length - 1));
    expect(await withTimeout(trailers, 10_000, 'the other client\'s answer')).toBe('0');
    expect(await closed).toBe(0); // not reset
    other.destroy();
    for (const s of sessions) s.destroy();
    await Promise.all(calls);
  }, 60_000);
});

describe('calls open at once', () => {
  it('refuses a client\'s call past grpcStreamsPerClientMax on all its connections, and not another client\'s', async () => {
    const [host, port] = [engine.address.slice(0, engine.address.lastIndexOf(':')), Number(engine.address.slice(engine.address.lastIndexOf(':') + 1))];
    const sessions = [0, 1].map(() => http2.connect(`http://${engine.address}`));
    for (const s of sessions) s.on('error', () => undefined);
    const open = (session: http2.ClientHttp2Session) => {
      const stream = session.request({ ':method': 'POST', ':path': '/txe.v1.TransactionService/SubmitBatch', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => undefined);
      stream.write(Buffer.from([0, 0, 0, 0, 9])); // a prefix, and never the message: the call stays open
      return new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)));
    };
    const calls = Array.from({ length: STREAMS_PER_CLIENT_MAX + 2 }, (_, i) => open(sessions[i % 2]));
    let refused = 0;
    for (const c of calls) void c.then((code) => { if (code === http2.constants.NGHTTP2_REFUSED_STREAM) refused++; });
    await withTimeout(until('two calls refused', () => (refused >= 2 ? true : null)), 10_000, 'the calls past the cap refused');
    await new Promise((r) => setTimeout(r, 300));
    expect(refused).toBe(2); // the cap, not one more
    const other = http2.connect(`http://${engine.address}`, { createConnection: () => net.connect({ host, port, localAddress: '127.0.0.2' }) });
    other.on('error', () => undefined);
    let otherClosed = false;
    void open(other).then(() => { otherClosed = true; });
    await new Promise((r) => setTimeout(r, 300)); // a refusal comes at once; this call stays open
    expect(otherClosed).toBe(false);
    other.destroy();
    for (const s of sessions) s.destroy();
    await Promise.all(calls);
  }, 30_000);
});

/** A SubmitBatch request as gRPC frames it: the 5-byte prefix, then the message. */
function encodeSubmit(batch: ReturnType<typeof signedBatch>): Buffer {
  const body = Buffer.from(TransactionServiceDefinition.SubmitBatch.requestSerialize(toWireRequest({ ...batch, ack: 'ordered' })));
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}
