/*
 * CPU time used by the load generator (this process) and by the engine (a child process, read from
 * /proc on Linux), so a report says how many cores each side burnt during the measured window. On
 * 2 cores this is what tells "the engine is saturated" from "the load generator is".
 */

import { readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

export interface CpuSnapshot { atNs: bigint; selfUs: number; childUs: number | null }

export function cpuSnapshot(childPid: number | null): CpuSnapshot {
  const self = process.cpuUsage();
  return { atNs: process.hrtime.bigint(), selfUs: self.user + self.system, childUs: childPid === null ? null : procCpuUs(childPid) };
}

export function coresBetween(a: CpuSnapshot, b: CpuSnapshot): { loadgen: number; engine: number | null } {
  const wallUs = Number(b.atNs - a.atNs) / 1000;
  const cores = (us: number) => Math.round((us / wallUs) * 100) / 100;
  return { loadgen: cores(b.selfUs - a.selfUs), engine: a.childUs === null || b.childUs === null ? null : cores(b.childUs - a.childUs) };
}

/** Resident memory of a process in MiB (from /proc on Linux), or null where unreadable. */
export function rssMiB(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}

function procCpuUs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the line)
    return (ticks / CLOCK_TICKS_PER_S) * 1e6;
  } catch {
    return null;
  }
}
