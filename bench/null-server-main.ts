/*
 * The null server as a process of its own (see null-server.ts), started by `txe bench` through
 * startListeningProcess: it logs one JSON 'listening' line with its address, and stops on SIGTERM.
 */

import { startNullServer } from './null-server.js';

const server = await startNullServer('127.0.0.1', 0);
process.stdout.write(JSON.stringify({ msg: 'listening', address: `127.0.0.1:${server.port}`, pid: process.pid }) + '\n');
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void server.stop().then(() => process.exit(0));
});
