/*
 * Which side limited a `txe bench` run: the engine, the load generator, or (open loop) simply the
 * offered rate. The evidence, all measured in the same run:
 * - the generator's own ceiling (loadgen-ceiling.ts): the same plan against a server that does
 *   nothing, so the most this generator can push through loopback gRPC on this machine;
 * - how busy the generator's event loop was, in the run and at its ceiling: the generator is one
 *   event loop, so one that is as busy in the run as at its ceiling could not have sent faster,
 *   even when the run is well below the ceiling (on 2 cores the engine takes the CPU it needed);
 * - in open loop, how much of the offered rate the generator really sent.
 */

export type LimitedBy = 'engine' | 'load_generator' | 'offered_rate' | 'not_measured';

export interface VerdictInput {
  tps: number; // committed per second in the measured window
  ceilingTps: number | null; // the load generator's ceiling; null when not measured
  rateTps: number | 'max'; // offered rate, or closed loop
  sentTps: number; // transactions first sent per second in the measured window
  eventLoopUtilization: number; // the generator's, in the measured window
  ceilingEventLoopUtilization: number | null; // the generator's, at its ceiling
}

export interface Verdict {
  limitedBy: LimitedBy;
  fractionOfCeiling: number | null; // tps / ceilingTps
  keptUp: boolean | null; // open loop: did the generator send the offered rate? null in closed loop
  line: string; // "limited by: …", for people
  rateLine: string | null; // open loop only: whether the generator kept up with the offered rate
}

/*
 * A run at or above 0.9 of the generator's ceiling counts as limited by the generator. Why 0.9 and
 * not 1.0: the ceiling is measured against a null server that leaves the generator nearly a whole
 * core, while in the run the engine competes with it for the same 2 cores, so the generator's real
 * ceiling during the run is lower than the figure measured; and the ceiling itself moves between
 * back-to-back windows (the ratio of run to ceiling was steadier than either figure here: 0.261 and
 * 0.247 in two runs whose TPS differed by 1.9x, on a machine shared with other work). A run within
 * 10% of the ceiling cannot tell a slow engine from a generator at its limit, so it is reported
 * against the generator, with the note that the engine may be faster. Well below the ceiling, the
 * event-loop test below still catches a generator starved of CPU.
 */
export const LOADGEN_LIMITED_FRACTION = 0.9;

/*
 * The generator was as busy as at its ceiling when its event loop's busy share in the run reached
 * 0.9 of the share at the ceiling (which is itself below 1 here, 0.81-0.93: with one batch per lane in
 * flight the loop waits for answers now and then even against the null server).
 */
export const LOADGEN_BUSY_FRACTION = 0.9;

/*
 * Open loop: the generator kept up when it sent at least 0.95 of the offered rate within the
 * window. The 5% allows for whole batches: at 100k TPS and 8190 a batch, one batch is 82 ms, and a
 * window holds a whole number of them; and for the 100 ms tick that releases a late batch.
 */
export const KEPT_UP_FRACTION = 0.95;

export function verdictOf(v: VerdictInput): Verdict {
  const openLoop = v.rateTps !== 'max';
  const rate = v.rateTps === 'max' ? 0 : v.rateTps;
  const keptUp = openLoop ? v.sentTps >= KEPT_UP_FRACTION * rate : null;
  const busy = v.ceilingEventLoopUtilization !== null && v.eventLoopUtilization >= LOADGEN_BUSY_FRACTION * v.ceilingEventLoopUtilization;
  const rateLine = openLoop ? rateLineOf(rate, v.sentTps, keptUp!, v.ceilingTps, busy) : null;
  if (v.ceilingTps === null || !(v.ceilingTps > 0)) {
    return { limitedBy: 'not_measured', fractionOfCeiling: null, keptUp, rateLine, line: "limited by: not known (the load generator's ceiling was not measured: --loadgen-ceiling-s 0)" };
  }
  const fraction = round3(v.tps / v.ceilingTps);
  const verdict = (limitedBy: LimitedBy, line: string): Verdict => ({ limitedBy, fractionOfCeiling: fraction, keptUp, rateLine, line: `limited by: ${line}` });
  if (openLoop && keptUp && v.tps >= KEPT_UP_FRACTION * rate) {
    return verdict('offered_rate', `offered rate (the engine committed ${round3(v.tps / rate)} of the offered ${fmt(rate)} TPS, which is ${round3(rate / v.ceilingTps)} of the load generator's ceiling)`);
  }
  if (openLoop && !keptUp && rate >= LOADGEN_LIMITED_FRACTION * v.ceilingTps) {
    return verdict('load_generator', `load generator (the offered rate is ${round3(rate / v.ceilingTps)} of its ceiling; the engine may be faster)`);
  }
  if (fraction >= LOADGEN_LIMITED_FRACTION) {
    return verdict('load_generator', `load generator (run reached ${fraction} of its own ceiling; the engine may be faster)`);
  }
  if (busy) {
    return verdict('load_generator', `load generator (its event loop was busy ${v.eventLoopUtilization} of the run, ${v.ceilingEventLoopUtilization} at its ceiling, though the run reached only ${fraction} of that ceiling: it was short of CPU; the engine may be faster)`);
  }
  return verdict('engine', `engine (run reached ${fraction} of the load generator's ceiling)`);
}

function rateLineOf(rateTps: number, sentTps: number, keptUp: boolean, ceilingTps: number | null, busy: boolean): string {
  const sent = `sent ${fmt(sentTps)} of ${fmt(rateTps)} TPS offered`;
  if (keptUp) return `offered rate: the load generator kept up (${sent})`;
  const why = ceilingTps === null ? "why is not known without the load generator's ceiling"
    : rateTps >= LOADGEN_LIMITED_FRACTION * ceilingTps ? "the offered rate is at or past the load generator's ceiling"
      : busy ? 'its event loop was as busy as at its ceiling'
        : "every lane was waiting on the engine's answers: the engine fell behind the offered rate";
  return `offered rate: the load generator fell behind (${sent}: ${why})`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
