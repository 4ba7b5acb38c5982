/*
 * CPU time used by the load generator (this process), by the engine (a child process, read from
 * /proc on Linux), and by the PostgreSQL and Kafka servers on this machine (every `postgres`
 * process, and the `java` process running Kafka), so a report says how many cores each burnt
 * during the measured window. On 2 cores this is what tells "the engine is saturated" from "the
 * load generator is", and, with sinks, which server a durable group waits for.
 */

import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

type Server = 'postgres' | 'kafka';
export interface CpuSnapshot { atNs: bigint; selfUs: number; childUs: number | null; servers: Map<Server, Map<number, number>> | null }

/** `servers`: also read the local PostgreSQL and Kafka processes (runs with sinks). */
export function cpuSnapshot(childPid: number | null, servers = false): CpuSnapshot {
  const self = process.cpuUsage();
  return { atNs: process.hrtime.bigint(), selfUs: self.user + self.system, childUs: childPid === null ? null : procCpuUs(childPid), servers: servers ? serverCpuUs() : null };
}

export function coresBetween(a: CpuSnapshot, b: CpuSnapshot): { loadgen: number; engine: number | null; postgres: number | null; kafka: number | null } {
  const wallUs = Number(b.atNs - a.atNs) / 1000;
  const cores = (us: number) => Math.round((us / wallUs) * 100) / 100;
  // A server process that started inside the window (a new PostgreSQL backend) counts whole.
  const server = (name: Server) => {
    const before = a.servers?.get(name);
    const after = b.servers?.get(name);
    if (!before || !after || after.size === 0) return null;
    let us = 0;
    for (const [pid, t] of after) us += t - (before.get(pid) ?? 0);
    return cores(us);
  };
  return { loadgen: cores(b.selfUs - a.selfUs), engine: a.childUs === null || b.childUs === null ? null : cores(b.childUs - a.childUs), postgres: server('postgres'), kafka: server('kafka') };
}

/** CPU microseconds of every local postgres process and of the JVM running Kafka, by pid. */
function serverCpuUs(): Map<Server, Map<number, number>> {
  const out = new Map<Server, Map<number, number>>([['postgres', new Map()], ['kafka', new Map()]]);
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out; // not Linux
  }
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const server: Server | null = comm === 'postgres' ? 'postgres'
        : comm === 'java' && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('kafka') ? 'kafka' : null;
      if (server === null) continue;
      const us = procCpuUs(Number(p));
      if (us !== null) out.get(server)!.set(Number(p), us);
    } catch {
      // gone meanwhile
    }
  }
  return out;
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
