/*
 * u64 arithmetic on (hi, lo) pairs of u32 held in plain numbers. Balances, holds and nonces are u64
 * on the wire; BigInt costs ~50 ns an operation and allocates, these cost ~1 ns and do not.
 */

export const TWO_32 = 0x1_0000_0000;

/** a >= b */
export function geq(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi > bHi || (aHi === bHi && aLo >= bLo);
}

/** Low word of a + b (as u32). */
export function addLo(aLo: number, bLo: number): number {
  return (aLo + bLo) >>> 0;
}

/** High word of a + b; may reach 2^32 or more, which the caller treats as overflow. */
export function addHi(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return aHi + bHi + (aLo + bLo >= TWO_32 ? 1 : 0);
}

/** Low word of a - b (a >= b). */
export function subLo(aLo: number, bLo: number): number {
  return (aLo - bLo) >>> 0;
}

/** High word of a - b (a >= b). */
export function subHi(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return aHi - bHi - (aLo < bLo ? 1 : 0);
}

export function toBigInt(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

export function fromBigInt(value: bigint): [hi: number, lo: number] {
  return [Number(value >> 32n), Number(value & 0xffff_ffffn)];
}
