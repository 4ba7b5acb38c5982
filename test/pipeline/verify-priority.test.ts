// The verify workers run at the nice value of config verifyWorkerNice (Linux), the engine's other
// threads as they started: on a busy machine the I/O thread and the sequencer keep their cores when
// a worker wakes (bench/RESULTS.md, session 10).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEngineProcess } from '../../bench/engine-process.js';

/** The nice value of each thread of `pid`, by thread id (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNices(pid: number): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on
      nices.set(Number(tid), Number(fields[19 - 3]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return nices;
}

describe.runIf(fs.existsSync('/proc/thread-self'))('verify worker priority', () => {
  it('lowers the verify workers, and only them, to verifyWorkerNice', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txe-nice-'));
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ verifyWorkerNice: 7 }));
    const engine = await startEngineProcess(['--workers', '2', '--config', config]);
    try {
      const pid = engine.child.pid!;
      const deadline = Date.now() + 10_000;
      let niced: number[] = [];
      while (Date.now() < deadline) {
        niced = [...threadNices(pid)].filter(([, nice]) => nice === 7).map(([tid]) => tid);
        if (niced.length >= 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const nices = threadNices(pid);
      expect(niced).toHaveLength(2); // the two verify workers
      expect(nices.get(pid)).toBe(0); // the main thread: gRPC in, answers out
      expect([...nices.values()].filter((n) => n !== 0 && n !== 7)).toEqual([]);
    } finally {
      await engine.stop();
    }
  }, 30_000);
});
