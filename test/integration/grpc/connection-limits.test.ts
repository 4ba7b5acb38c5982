// Proves that a flood of connections is bounded: past grpcConnectionsMax, a new connection is
// closed as it arrives, the clients already connected keep being served, and a slot freed by a
// closed connection can be taken again. Loopback only.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxeClient } from '../../../engine/client.js';
import type { Engine } from '../../../engine/engine.js';
import { mint, signedBatch, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';
import { withTimeout } from '../../support/async.js';

const CONNECTIONS_MAX = 4;
let engine: Engine;
let client: TxeClient;
let stop: () => Promise<void>;

beforeAll(async () => ({ engine, client, stop } = await startTestEngine({ grpcConnectionsMax: CONNECTIONS_MAX })));
afterAll(async () => stop());

/** A raw TCP connection to the engine; resolves once connected, with a promise of its close. */
async function rawConnection(): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const [host, port] = [engine.address.slice(0, engine.address.lastIndexOf(':')), Number(engine.address.slice(engine.address.lastIndexOf(':') + 1))];
  const socket = net.connect(port, host);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

describe('connection limits', () => {
  it('closes connections past grpcConnectionsMax as they arrive, and keeps serving the others', async () => {
    let nonce = 0n;
    const submit = async (c: TxeClient) => (await c.submitBatch(signedBatch([mint(user('conn').publicKey, ++nonce, 1n)]))).accepted;
    expect(await submit(client)).toBe(1); // the test's client holds one connection
    const held = await Promise.all(Array.from({ length: CONNECTIONS_MAX - 1 }, () => rawConnection()));
    const extra = await rawConnection(); // TCP accepts it; the engine closes it at once
    await withTimeout(extra.closed, 5000, 'the connection past the limit closed by the engine');
    for (const h of held) expect(h.socket.destroyed).toBe(false);
    expect(await submit(client)).toBe(1); // the engine serves the connected client meanwhile
    held[0].socket.destroy();
    await held[0].closed;
    const again = new TxeClient(engine.address); // the freed slot can be taken
    await again.waitReady(5000);
    expect(await submit(again)).toBe(1);
    again.close();
    for (const h of held.slice(1)) h.socket.destroy();
  });
});
