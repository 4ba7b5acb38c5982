/*
 * Attestations handed straight to the other validators (ClusterService.Attest on their fronts), as
 * well as written to the attestations topic. Through the topic an attestation waits for its
 * produce (acks all, RF 3) and for each reader's fetch: ~12 ms p50 and 33-43 ms p95 of a block's
 * ~90 ms to finality on this 2-core machine (bench/RESULTS.md, session 9). Sent directly it is one
 * gRPC call on a warm channel. The topic stays the record a restarted or lagging validator reads
 * back; a push that fails or is dropped costs only time.
 *
 * Bounded: at most PUSHES_IN_FLIGHT_MAX calls a peer; beyond that an attestation is not pushed (the
 * peer is slow or down, and it reads the topic anyway). Each call has a deadline.
 */

import * as grpc from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import { ATTEST_METHOD } from './front.js';

const PUSHES_IN_FLIGHT_MAX = 256; // a peer's; ~180 B each
const PUSH_DEADLINE_MS = 2_000;

const PeerClient = grpc.makeGenericClientConstructor({ Attest: ATTEST_METHOD }, 'ClusterService');
type RawClient = grpc.Client & { Attest: (request: Buffer, options: grpc.CallOptions, callback: (e: grpc.ServiceError | null) => void) => void };

interface Peer { id: number; client: RawClient; inFlight: number }

export class AttestationPeers {
  private readonly peers: Peer[];
  private readonly pushes: Counter<'result'>;

  constructor(fronts: Array<{ id: number; front: string }>, credentials: grpc.ChannelCredentials, registry: Registry) {
    this.peers = fronts.map(({ id, front }) => ({ id, client: new PeerClient(front, credentials) as unknown as RawClient, inFlight: 0 }));
    this.pushes = new Counter({ name: 'txe_cluster_attestation_pushes_total', help: "this validator's attestations handed straight to another validator: sent, failed (the peer refused it or did not answer), dropped (too many in flight to that peer)", labelNames: ['result'], registers: [registry] });
  }

  /** Hands each encoded attestation to every peer; never waits and never throws. */
  push(attestations: Buffer[]): void {
    for (const peer of this.peers) {
      for (const bytes of attestations) {
        if (peer.inFlight >= PUSHES_IN_FLIGHT_MAX) { this.pushes.inc({ result: 'dropped' }); continue; }
        peer.inFlight++;
        peer.client.Attest(bytes, { deadline: Date.now() + PUSH_DEADLINE_MS }, (error) => {
          peer.inFlight--;
          this.pushes.inc({ result: error ? 'failed' : 'sent' });
        });
      }
    }
  }

  close(): void {
    for (const peer of this.peers) peer.client.close();
  }
}
