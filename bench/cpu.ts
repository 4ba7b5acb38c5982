/*
 * CPU time used by the load generator (this process), by the engine (a child process, read from
 * /proc on Linux), and by the PostgreSQL and Kafka servers on this machine (every `postgres`
 * process, and the `java` process running Kafka), so a report says how many cores each burnt
 * during the measured window. On 2 cores this is what tells "the engine is saturated" from "the
 * load generator is", and, with sinks, which server a durable group waits for.
 *
 * With --target (an engine, or a cluster's validators, already running), each target on this
 * machine is found by the port it listens on (/proc/net/tcp, then the process holding that socket)
 * and measured too, with the etcd and NGINX processes and the machine's busy cores (/proc/stat):
 * the cluster's report says how its cores were spent without a separate sampler. Cost: one scan of
 * /proc/<pid>/fd of every process at the start (~10 ms), two reads of /proc/<pid>/stat a process.
 */

import os from 'node:os';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isLoopbackHost } from '../engine/config.js';

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

type Server = 'postgres' | 'kafka' | 'etcd' | 'nginx';
const SERVERS: readonly Server[] = ['postgres', 'kafka', 'etcd', 'nginx'];
const LISTEN_STATE = '0A'; // TCP_LISTEN in /proc/net/tcp's st column

export interface CpuSnapshot {
  atNs: bigint;
  selfUs: number;
  childUs: number | null;
  servers: Map<Server, Map<number, number>> | null;
  targets: Map<string, number | null>; // label -> CPU µs of the process listening on that target
  machine: { busyTicks: number; totalTicks: number } | null;
}

/** `servers`: also read the local PostgreSQL, Kafka, etcd and NGINX processes (runs with sinks, or against a cluster). */
export function cpuSnapshot(childPid: number | null, servers = false, targets: Map<string, number> = new Map()): CpuSnapshot {
  const self = process.cpuUsage();
  const targetUs = new Map<string, number | null>();
  for (const [label, pid] of targets) targetUs.set(label, procCpuUs(pid));
  return { atNs: process.hrtime.bigint(), selfUs: self.user + self.system, childUs: childPid === null ? null : procCpuUs(childPid), servers: servers ? serverCpuUs() : null, targets: targetUs, machine: machineTicks() };
}

export interface CoresUsed {
  loadgen: number;
  engine: number | null;
  postgres: number | null;
  kafka: number | null;
  etcd: number | null;
  nginx: number | null;
  targets: Record<string, number | null>; // by label: a target found listening on this machine
  machine: number | null; // busy cores of the whole machine
}

export function coresBetween(a: CpuSnapshot, b: CpuSnapshot): CoresUsed {
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
  const targets: Record<string, number | null> = {};
  for (const [label, before] of a.targets) {
    const after = b.targets.get(label);
    targets[label] = before === null || after === null || after === undefined ? null : cores(after - before);
  }
  const machine = a.machine && b.machine && b.machine.totalTicks > a.machine.totalTicks
    ? Math.round(((b.machine.busyTicks - a.machine.busyTicks) / (b.machine.totalTicks - a.machine.totalTicks)) * os.availableParallelism() * 100) / 100
    : null;
  return {
    loadgen: cores(b.selfUs - a.selfUs), engine: a.childUs === null || b.childUs === null ? null : cores(b.childUs - a.childUs),
    postgres: server('postgres'), kafka: server('kafka'), etcd: server('etcd'), nginx: server('nginx'), targets, machine,
  };
}

/**
 * The process listening on each `host:port` target that is on this machine (a loopback host), by
 * label; targets elsewhere, or whose socket this user cannot see, are left out.
 */
export function listeningTargets(targets: ReadonlyMap<string, string>): Map<string, number> {
  const ports = new Map<number, string>(); // port -> label
  for (const [label, address] of targets) {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[|\]$/g, '');
    if (isLoopbackHost(host)) ports.set(Number(address.slice(i + 1)), label);
  }
  const out = new Map<string, number>();
  if (ports.size === 0) return out;
  const inodes = new Map<string, string>(); // socket inode -> label
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(table, 'utf8'); } catch { continue; }
    for (const { port, inode } of listeningSockets(text)) {
      const label = ports.get(port);
      if (label !== undefined) inodes.set(inode, label);
    }
  }
  const found = new Map<string, number>(); // label -> pid
  for (const [pid, inode] of socketInodes(new Set(inodes.keys()))) found.set(inodes.get(inode)!, pid);
  for (const label of targets.keys()) if (found.has(label)) out.set(label, found.get(label)!); // in the targets' order
  return out;
}

/** The listening sockets of a /proc/net/tcp(6) table: local port and socket inode. */
export function listeningSockets(table: string): { port: number; inode: string }[] {
  const out: { port: number; inode: string }[] = [];
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN_STATE) continue;
    out.push({ port: parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16), inode: f[9] });
  }
  return out;
}

/** The process holding each of `inodes` (a socket), from /proc/<pid>/fd; pairs of (pid, inode). */
function socketInodes(inodes: Set<string>): [number, string][] {
  const out: [number, string][] = [];
  for (const p of procPids()) {
    let fds: string[] = [];
    try { fds = readdirSync(`/proc/${p}/fd`); } catch { continue; }
    for (const fd of fds) {
      let link = '';
      try { link = readlinkSync(`/proc/${p}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) { out.push([Number(p), m[1]]); inodes.delete(m[1]); }
    }
    if (inodes.size === 0) break;
  }
  return out;
}

function procPids(): string[] {
  try {
    return readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return []; // not Linux
  }
}

/** Busy and total ticks of every core (/proc/stat's first line), or null where unreadable. */
function machineTicks(): { busyTicks: number; totalTicks: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((x, y) => x + y, 0); // user nice system idle iowait irq softirq steal (guest time is inside user)
    return { busyTicks: total - f[3] - f[4], totalTicks: total };
  } catch {
    return null;
  }
}

/** CPU microseconds of every local postgres, etcd and NGINX process and of the JVMs running Kafka, by pid. */
function serverCpuUs(): Map<Server, Map<number, number>> {
  const out = new Map<Server, Map<number, number>>(SERVERS.map((s) => [s, new Map()]));
  for (const p of procPids()) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const server: Server | null = comm === 'postgres' || comm === 'etcd' || comm === 'nginx' ? comm
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
