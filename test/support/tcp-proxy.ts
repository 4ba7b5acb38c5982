/* A TCP proxy on loopback in front of a server, for tests that need the network to misbehave:
 * stall() stops reading what the server sends (a client stalled at the socket, whose server's
 * writes back up), resume() reads again; cut() destroys every connection through it and refuses
 * new ones until restore() (a network partition). Both directions keep TCP backpressure. */

import net from 'node:net';

export interface TcpProxy { address: string; port: number; stall(): void; resume(): void; cut(): void; restore(): void; close(): Promise<void> }

export async function tcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<{ up: net.Socket; down: net.Socket }>();
  let stalled = false;
  let cutNow = false;
  const server = net.createServer((down) => {
    if (cutNow) return down.destroy();
    const up = net.connect(targetPort, targetHost);
    const pair = { up, down };
    pairs.add(pair);
    down.on('data', (d) => { if (!up.write(d)) down.pause(); });
    up.on('drain', () => down.resume());
    up.on('data', (d) => { if (!down.write(d)) up.pause(); });
    down.on('drain', () => { if (!stalled) up.resume(); });
    if (stalled) up.pause();
    const close = () => { up.destroy(); down.destroy(); pairs.delete(pair); };
    up.on('error', close).on('close', close);
    down.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const destroyAll = () => { for (const { up, down } of pairs) { up.destroy(); down.destroy(); } };
  return {
    address: `127.0.0.1:${port}`,
    port,
    stall() { stalled = true; for (const { up } of pairs) up.pause(); },
    resume() { stalled = false; for (const { up } of pairs) up.resume(); },
    cut() { cutNow = true; destroyAll(); },
    restore() { cutNow = false; },
    close: () => new Promise<void>((resolve) => { destroyAll(); server.close(() => resolve()); }),
  };
}
