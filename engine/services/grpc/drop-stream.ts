/*
 * Dropping a server stream whose reader stopped reading. A gRPC status travels in trailers, and
 * trailers follow every DATA frame already queued on the stream, so a reader stalled at the socket
 * would never get one and its queued messages would stay in memory until its connection died.
 * RST_STREAM is not flow-controlled and frees the stream's buffers at once; its code
 * ENHANCE_YOUR_CALM is what gRPC maps to RESOURCE_EXHAUSTED (grpc-js: "Bandwidth exhausted or
 * memory limit exceeded"). grpc-js does not expose the HTTP/2 stream of a call, so this reaches it
 * through the call's internals (pinned grpc-js; test/integration/grpc/stalled-readers.test.ts
 * fails if they move) and falls back to destroying the call's own buffer.
 */

import http2, { type Http2Stream } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

const INTERNAL_DEPTH_MAX = 8;

export function dropStalledStream(call: grpc.ServerWritableStream<unknown, unknown>): void {
  const stream = http2StreamOf(call);
  if (stream !== null && !stream.destroyed) stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  call.destroy();
}

function http2StreamOf(call: object): Http2Stream | null {
  let at = (call as { call?: unknown }).call;
  for (let depth = 0; depth < INTERNAL_DEPTH_MAX && at !== null && typeof at === 'object'; depth++) {
    const stream = (at as { stream?: unknown }).stream;
    if (isHttp2Stream(stream)) return stream;
    at = (at as { nextCall?: unknown }).nextCall;
  }
  return null;
}

function isHttp2Stream(x: unknown): x is Http2Stream {
  return typeof x === 'object' && x !== null && typeof (x as Http2Stream).close === 'function' && 'rstCode' in x && 'session' in x;
}
