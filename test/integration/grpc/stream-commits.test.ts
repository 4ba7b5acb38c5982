// Proves StreamCommits over a real socket: a replay of many more blocks than a stream buffers
// arrives whole and in order with every entry body; a seq older than the in-memory window gets
// OUT_OF_RANGE; a seq newer than every entry streams only blocks reaching it; readers are capped.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxeClient } from '../../../engine/client.js';
import { u64ToNumber, type U64 } from '../../../engine/services/grpc/codec.js';
import { readBody } from '../../../engine/core/record.js';
import { mint, signedBatch, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';
import { withTimeout } from '../../support/async.js';

const n = (v: unknown) => u64ToNumber(v as U64);
const BLOCKS = 300;
let client: TxeClient;
let stop: () => Promise<void>;

// 512 entries of history: 300 one-mint blocks fit, and 600 push the first ones out.
beforeAll(async () => ({ client, stop } = await startTestEngine({ historyEntriesMax: 512, historyBlocksMax: 4096, subscribersMax: 2 })));
afterAll(async () => stop());

function collect(call: grpc.ClientReadableStream<Record<string, unknown>>, count: number): Promise<Record<string, unknown>[]> {
  const blocks: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (b: Record<string, unknown>) => { blocks.push(b); if (blocks.length === count) resolve(blocks); });
    call.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  });
}

describe('StreamCommits', () => {
  it(`replays ${BLOCKS} blocks from seq 1, in order, each with its entry bodies`, async () => {
    const recipient = user('sc').publicKey;
    for (let i = 1; i <= BLOCKS; i++) await client.submitBatch(signedBatch([mint(recipient, BigInt(i), BigInt(i))]));
    const call = client.streamCommits(1);
    const blocks = await collect(call, BLOCKS);
    call.cancel();
    expect(blocks.map((b) => n(b.number))).toEqual([...Array(BLOCKS).keys()].map((i) => i + 1));
    blocks.forEach((b, i) => {
      expect(n(b.firstSeq)).toBe(i + 1);
      expect(readBody(b.entryBodies as Uint8Array).amount).toBe(BigInt(i + 1));
      if (i > 0) expect(Buffer.from(b.prevHash as Uint8Array).equals(Buffer.from(blocks[i - 1].hash as Uint8Array))).toBe(true);
    });
  });

  it('streams only blocks that reach a seq newer than every entry, as they are cut', async () => {
    const call = client.streamCommits(BLOCKS + 2);
    const got = collect(call, 1);
    // The response headers say the reader is registered: both blocks below are cut after, live.
    await withTimeout(new Promise((resolve) => call.once('metadata', resolve)), 5000, 'StreamCommits headers');
    await client.submitBatch(signedBatch([mint(user('sc').publicKey, BigInt(BLOCKS + 1), 1n)])); // seq 301: before what was asked
    await client.submitBatch(signedBatch([mint(user('sc').publicKey, BigInt(BLOCKS + 2), 2n)])); // seq 302
    const [block] = await got;
    call.cancel();
    expect(n(block.firstSeq)).toBe(BLOCKS + 2);
  });

  it('answers OUT_OF_RANGE for a seq older than the window, and caps the number of readers', async () => {
    for (let i = BLOCKS + 3; i <= 2 * BLOCKS + 2; i++) await client.submitBatch(signedBatch([mint(user('sc').publicKey, BigInt(i), 1n)]));
    const old = client.streamCommits(1);
    await expect(new Promise((_, reject) => old.on('error', reject))).rejects.toMatchObject({ code: grpc.status.OUT_OF_RANGE, details: expect.stringMatching(/seq 1 is older than the in-memory window/) });
    const a = client.streamCommits(0);
    const b = client.streamCommits(0);
    const c = client.streamCommits(0);
    await expect(new Promise((_, reject) => c.on('error', reject))).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/max 2/) });
    for (const call of [a, b]) { call.on('error', () => undefined); call.cancel(); }
  });
});
