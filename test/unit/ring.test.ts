// Proves the input ring's edges: claims up to exactly full, refusal when full, wrap-around copies
// that land in the right slots, and cursor-order violations caught as errors.
import { describe, expect, it } from 'vitest';
import { InputRing, VERDICT_UNVERIFIED, createRingBuffers, segments } from '../../engine/ring/input-ring.js';
import { FixedQueue } from '../../engine/ring/fixed-queue.js';

function bodies(count: number, first: number): Buffer {
  const out = Buffer.alloc(count * 128);
  for (let i = 0; i < count; i++) out.fill((first + i) & 0xff, i * 128, (i + 1) * 128);
  return out;
}

describe('InputRing', () => {
  it('fills to exactly its size and refuses one more slot', () => {
    const ring = new InputRing(createRingBuffers(8));
    expect(ring.tryClaim(5)).toBe(0);
    expect(ring.tryClaim(3)).toBe(5);
    expect(ring.slotsFree).toBe(0);
    expect(ring.tryClaim(1)).toBe(-1);
  });

  it('frees slots only when released, in order, after sequencing', () => {
    const ring = new InputRing(createRingBuffers(8));
    ring.tryClaim(8);
    expect(() => ring.release(4)).toThrow(/outside/);
    ring.markSequenced(4);
    ring.release(4);
    expect(ring.slotsFree).toBe(4);
    expect(ring.tryClaim(4)).toBe(8);
    expect(() => ring.markSequenced(3)).toThrow(/outside/);
    expect(() => ring.markSequenced(13)).toThrow(/outside/);
  });

  it('wraps a batch around the end and reads it back in order', () => {
    const ring = new InputRing(createRingBuffers(8));
    ring.tryClaim(6);
    ring.markSequenced(6);
    ring.release(6);
    const start = ring.tryClaim(5); // slots 6, 7, 0, 1, 2
    expect(start).toBe(6);
    const src = bodies(5, 100);
    ring.writeBodies(start, src, 5, 128);
    expect(ring.copyBodies(start, 5).equals(src)).toBe(true);
    expect(ring.bodies[0 * 128]).toBe(102);
    expect(ring.bodies[7 * 128]).toBe(101);
    expect(segments(start, 5, 8)).toEqual([[6, 2], [0, 3]]);
    expect(ring.verdict(start + 4)).toBe(VERDICT_UNVERIFIED);
  });

  it('copies strided per-tx records (body + signature) into both regions', () => {
    const ring = new InputRing(createRingBuffers(4));
    const records = Buffer.alloc(2 * 192);
    records.fill(1, 0, 128); records.fill(2, 128, 192); records.fill(3, 192, 320); records.fill(4, 320, 384);
    const start = ring.tryClaim(2);
    ring.writeBodies(start, records, 2, 192);
    ring.writeSignatures(start, records, 2, 192, 128);
    expect(ring.bodies.subarray(128, 256).every((b) => b === 3)).toBe(true);
    expect(ring.signatures.subarray(64, 128).every((b) => b === 4)).toBe(true);
  });

  it('rejects sizes that are not powers of two and writes outside a claim', () => {
    expect(() => createRingBuffers(12)).toThrow(/power of two/);
    const ring = new InputRing(createRingBuffers(4));
    expect(() => ring.writeBodies(0, bodies(1, 0), 1, 128)).toThrow(/not claimed/);
  });
});

describe('FixedQueue', () => {
  it('is FIFO across wrap-around and refuses past capacity', () => {
    const q = new FixedQueue<number>(4);
    for (let i = 0; i < 4; i++) expect(q.push(i)).toBe(true);
    expect(q.push(9)).toBe(false);
    expect(q.shift()).toBe(0);
    expect(q.push(4)).toBe(true);
    expect([q.shift(), q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([1, 2, 3, 4, undefined]);
  });
});
