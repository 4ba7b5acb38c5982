/*
 * Starts `txe serve` as a child process (for `txe bench`, and for the tests that need a real
 * process to kill), waits for its 'listening' log line, and stops it with SIGTERM. The same
 * launcher starts the bench's null server (null-server-main.ts), which prints the same line.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { distFile } from '../engine/paths.js';
import { ENGINE_NODE_FLAGS } from '../engine/engine.js';

export interface ListeningProcess { child: ChildProcess; address: string; metricsAddress: string | null; exited: Promise<number | null>; stop(): Promise<number | null> }
export type EngineProcess = ListeningProcess;

export interface EngineProcessOptions {
  startTimeoutMs?: number; // default 30 s
  reportUnexpectedExit?: boolean; // print stderr when it exits without stop(); default true
  onLogLine?: (line: string) => void; // every line it prints on stdout (its JSON log)
}

// Chunks of the child's stderr kept for an error message: enough for a stack trace, and bounded.
const STDERR_CHUNKS_MAX = 50;
// A child that ignores SIGTERM this long is killed: the engine's own shutdown grace is 10 s.
const STOP_TIMEOUT_MS = 20_000;

export async function startEngineProcess(args: string[], options: EngineProcessOptions = {}): Promise<EngineProcess> {
  return startListeningProcess('engine', [...ENGINE_NODE_FLAGS, distFile('cli/main.js'), 'serve', '--port', '0', '--metrics-port', '0', ...args], options);
}

/** Runs `node argv…`, resolves once it logs {"msg":"listening","address":…} on stdout. */
export async function startListeningProcess(what: string, argv: string[], options: EngineProcessOptions = {}): Promise<ListeningProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); if (stderr.length > STDERR_CHUNKS_MAX) stderr.shift(); });
  let metricsAddress: string | null = null;
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${what} did not start within ${startTimeoutMs} ms: ${stderr.join('')}`)); }, startTimeoutMs);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      options.onLogLine?.(line);
      try {
        const event = JSON.parse(line) as { msg?: string; address?: string; metrics?: string };
        if (event.msg === 'listening' && event.address) { clearTimeout(timer); metricsAddress = event.metrics ?? null; resolve(event.address); }
      } catch { /* not a log line */ }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${code} before listening: ${stderr.join('')}`)); });
  });
  child.stdout!.resume();
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
    if (!stopping && options.reportUnexpectedExit !== false) process.stderr.write(`txe bench: the ${what} exited unexpectedly (${code ?? signal}):\n${stderr.join('')}\n`);
    resolve(code);
  }));
  return {
    child, address, metricsAddress, exited,
    async stop() {
      stopping = true;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
