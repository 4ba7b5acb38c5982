// A --tls run's report says what TLS took of it (bench/tls-cost.ts), from the transport's CPU a MB
// over TLS and plaintext measured in the same run.
import { describe, expect, it } from 'vitest';
import { tlsCostOf } from '../../bench/tls-cost.js';

const plain = { bytesPerS: 400e6, cpuMsPerMb: 3.5 };
const tls = { bytesPerS: 250e6, cpuMsPerMb: 5.5 };

describe('tlsCostOf', () => {
  it('turns the extra CPU a MB into cores at the run\'s MB/s and a share of the cores the run used', () => {
    // 300 MB/s × 2 ms/MB = 0.6 cores of TLS, out of 1.5 + 0.5 = 2 cores used: 0.3 of the run.
    const cost = tlsCostOf({ plain, tls }, 300e6, { engine: 1.5, loadgen: 0.5 });
    expect(cost).toEqual({ extra_cpu_ms_per_mb: 2, cores: 0.6, share_of_run_cpu: 0.3, expected_fraction_of_plain: 0.7 });
  });

  it('gives the cost without a share when the engine\'s cores are unknown (--target)', () => {
    expect(tlsCostOf({ plain, tls }, 300e6, { engine: null, loadgen: 0.5 })).toEqual({ extra_cpu_ms_per_mb: 2, cores: 0.6, share_of_run_cpu: null, expected_fraction_of_plain: null });
  });

  it('is absent from plaintext runs', () => {
    expect(tlsCostOf({ plain, tls: null }, 300e6, { engine: 1.5, loadgen: 0.5 })).toBeNull();
  });
});
