/* A TCP proxy on loopback that a test can cut, as a network partition between one process and a
 * server: cut() destroys every connection through it and refuses new ones until restore(). */

import net from 'node:net';

export interface CuttableProxy { port: number; cut(): void; restore(): void; close(): Promise<void> }

export async function cuttableProxy(targetHost: string, targetPort: number): Promise<CuttableProxy> {
  const open = new Set<net.Socket>();
  let cutNow = false;
  const server = net.createServer((down) => {
    if (cutNow) return down.destroy();
    const up = net.connect(targetPort, targetHost);
    for (const [a, b] of [[down, up], [up, down]]) {
      open.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => { open.delete(a); b.destroy(); });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      cutNow = true;
      for (const socket of open) socket.destroy();
    },
    restore() { cutNow = false; },
    close: () => new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
