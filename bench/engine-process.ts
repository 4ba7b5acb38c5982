/*
 * Starts `txe serve` as a child process (for `txe bench`, and for the tests that need a real
 * process to kill), waits for its 'listening' log line, and stops it with SIGTERM.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { distFile } from '../engine/paths.js';

export interface EngineProcess { child: ChildProcess; address: string; exited: Promise<number | null>; stop(): Promise<number | null> }

export interface EngineProcessOptions {
  startTimeoutMs?: number; // default 30 s
  reportUnexpectedExit?: boolean; // print stderr when it exits without stop(); default true
}

export async function startEngineProcess(args: string[], options: EngineProcessOptions = {}): Promise<EngineProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const child = spawn(process.execPath, [distFile('cli/main.js'), 'serve', '--port', '0', '--metrics-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); if (stderr.length > 50) stderr.shift(); });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`engine did not start within ${startTimeoutMs} ms: ${stderr.join('')}`)); }, startTimeoutMs);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const event = JSON.parse(line) as { msg?: string; address?: string };
        if (event.msg === 'listening' && event.address) { clearTimeout(timer); resolve(event.address); }
      } catch { /* not a log line */ }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`engine exited with ${code} before listening: ${stderr.join('')}`)); });
  });
  child.stdout!.resume();
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
    if (!stopping && options.reportUnexpectedExit !== false) process.stderr.write(`txe bench: the engine exited unexpectedly (${code ?? signal}):\n${stderr.join('')}\n`);
    resolve(code);
  }));
  return {
    child, address, exited,
    async stop() {
      stopping = true;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
