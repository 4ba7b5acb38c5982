/*
 * A budget for the bytes of gRPC messages that have started to arrive but are not complete. grpc-js
 * buffers each message until its last byte, so a client that opens many calls and sends all but
 * the last byte of a large message in each held that memory as long as it liked: one connection of
 * 1,000 such calls took ~1.6 GB (issue 12). Here every HTTP/2 stream's bytes are followed through
 * the gRPC framing (a 5-byte prefix with the length, then the message), reading only the prefixes,
 * so the engine knows how many bytes each connection and all of them hold in unfinished messages.
 * A stream whose data would take its connection past perConnectionBytesMax, its client past
 * perClientBytesMax, or all connections past totalBytesMax, is reset with ENHANCE_YOUR_CALM
 * (RESOURCE_EXHAUSTED to a gRPC client), which frees what grpc-js held for it. A client is its
 * certificate's SHA-256 fingerprint under mTLS, else its IP address: without the per-client
 * bound, one client on several connections could fill the total and get other clients' messages
 * reset. Complete messages are not counted: they are the pipeline's to
 * bound (rings, in-flight queues).
 * Cost: a few comparisons per DATA chunk; no copy of the data.
 */

import http2 from 'node:http2';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

const PREFIX_BYTES = 5; // compressed flag u8, message length u32 big-endian

export interface PartialMessageLimits { perConnectionBytesMax: number; perClientBytesMax: number; totalBytesMax: number }

export class PartialMessageBudget {
  private totalBytes = 0;
  private resetsCount = 0;
  private readonly clients = new Map<string, { key: string; bytes: number; sessions: number }>(); // at most one per open connection's client

  constructor(private readonly limits: PartialMessageLimits, private readonly clientKeyOf: (socket: Socket) => string) {}

  get bytesHeld(): number { return this.totalBytes; }
  get resets(): number { return this.resetsCount; }

  /** Follows every stream of every session of these HTTP/2 servers. */
  watch(http2Servers: EventEmitter[]): void {
    for (const server of http2Servers) server.on('session', (session: http2.ServerHttp2Session) => this.watchSession(session));
  }

  private watchSession(session: http2.ServerHttp2Session): void {
    const connection = { bytes: 0 };
    const client = this.clientOf(session.socket as Socket);
    client.sessions++;
    session.once('close', () => { if (--client.sessions === 0 && client.bytes === 0) this.clients.delete(client.key); });
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      const framing = { prefix: Buffer.alloc(PREFIX_BYTES), prefixHave: 0, messageLeft: 0, held: 0 };
      const add = (delta: number) => {
        connection.bytes += delta;
        client.bytes += delta;
        this.totalBytes += delta;
        framing.held += delta;
      };
      const release = () => {
        add(-framing.held);
        if (client.sessions === 0 && client.bytes === 0) this.clients.delete(client.key);
      };
      stream.on('data', (chunk: Buffer) => {
        const delta = this.follow(framing, chunk);
        if (delta === 0) return;
        add(delta);
        if (connection.bytes > this.limits.perConnectionBytesMax || client.bytes > this.limits.perClientBytesMax || this.totalBytes > this.limits.totalBytesMax) {
          release();
          this.resetsCount++;
          stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        }
      });
      stream.once('close', release);
    });
  }

  /** A client's share: by certificate fingerprint (mTLS), else by IP address (clientKeyOf). */
  private clientOf(socket: Socket): { key: string; bytes: number; sessions: number } {
    const key = this.clientKeyOf(socket);
    let client = this.clients.get(key);
    if (client === undefined) {
      client = { key, bytes: 0, sessions: 0 };
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * Walks one chunk through the stream's framing; returns how the stream's bytes of unfinished
   * messages changed (positive while a message arrives, negative when one completes).
   */
  private follow(f: { prefix: Buffer; prefixHave: number; messageLeft: number; held: number }, chunk: Buffer): number {
    let at = 0;
    let held = f.held;
    while (at < chunk.length) {
      if (f.messageLeft === 0) {
        const take = Math.min(PREFIX_BYTES - f.prefixHave, chunk.length - at);
        chunk.copy(f.prefix, f.prefixHave, at, at + take);
        f.prefixHave += take;
        at += take;
        held += take;
        if (f.prefixHave < PREFIX_BYTES) break;
        f.prefixHave = 0;
        f.messageLeft = f.prefix.readUInt32BE(1);
        if (f.messageLeft === 0) held = 0; // an empty message is complete at once
        continue;
      }
      const take = Math.min(f.messageLeft, chunk.length - at);
      f.messageLeft -= take;
      at += take;
      held += take;
      if (f.messageLeft === 0) held = 0; // complete: grpc-js hands it on
    }
    return held - f.held;
  }
}
