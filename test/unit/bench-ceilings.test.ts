// The per-tx verify ceiling is read before and after a run (bench/ceilings.ts): the fractions divide
// by the mean of both readings, and the drift between them says whether the machine's speed moved.
import { describe, expect, it } from 'vitest';
import { verifyCeilingOf, type Ceilings } from '../../bench/ceilings.js';

const reading = (core: number, all: number): Ceilings => ({ ed25519VerifyPerSCore: core, ed25519VerifyPerSAllCores: all, sha256BytesPerS: 1e9 });

describe('verifyCeilingOf', () => {
  it('divides by the mean of the readings before and after the run, and reports the drift of the one-core rate', () => {
    const c = verifyCeilingOf(reading(9000, 16000), reading(7500, 15000));
    expect(c.perSCore).toBe(8250);
    expect(c.perSAllCores).toBe(15500);
    expect(c.drift).toBeCloseTo(-1 / 6, 6);
  });

  it('takes the one reading as it is when there is no second (batch-signed runs)', () => {
    expect(verifyCeilingOf(reading(9000, 16000), null)).toEqual({ perSCore: 9000, perSAllCores: 16000, drift: null });
  });
});
