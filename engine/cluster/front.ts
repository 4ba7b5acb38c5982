/*
 * A validator's public gRPC port (issue 13): clients may send batches to any validator.
 *
 *   SubmitBatch / SubmitStream   a BATCH_SIGNED batch is checked here first (a trusted signer, the
 *                                signature over SHA-256 of the records): a bad one is answered at
 *                                once, where it arrived, and never reaches the leader. Then the
 *                                batch goes to the leader's engine (ack DURABLE, or ORDERED as asked)
 *                                and, for ack FINAL, its answer waits until its block is final
 *                                (finality.ts) and this validator's replica holds that very block.
 *   ClusterService.Status        this validator's role, term, height, final height and state hash.
 *   ClusterService.Attest        another validator's attestation, straight from it (attestation-peers.ts).
 *   grpc.health.v1               SERVING once it knows a leader.
 *
 * The port has the engine's guards (services/grpc/server.ts guardedServer): TLS 1.3 with client
 * certificates when the cluster has TLS, every call authorized by the caller's own role before its
 * handler runs (submitter for TransactionService, operator for ClusterService), the same limits
 * on connections, streams and unfinished messages. Only then does the front forward, with the
 * validator's own certificate: the leader's engine trusts its validators, the front trusts no one.
 *
 * The leader does not trust this check: every replica verifies every block again. PER_TX batches
 * are forwarded unchecked here (8190 Ed25519 verifies, ~0.6 s, on this event loop would stall every
 * other client); the leader's workers and every replica verify them. Cost of a forward: one decode
 * and one encode of the request (~1 MB copied a full batch, ~0.2 ms) on each side.
 */

import crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { AckWire, AuthModeWire, DecodeError, SERVICE_NAME, TransactionServiceDefinition, u64ToNumber, type SubmitBatchRequestWire, type SubmitBatchResponseWire } from '../services/grpc/codec.js';
import { Result } from '../core/result.js';
import type { KeySet } from '../core/checks.js';
import { PublicKeyCache } from '../core/keys.js';
import { BODY_BYTES } from '../core/record.js';
import { ClusterTypes } from './attestation.js';
import type { EngineConfig } from '../config.js';
import { guardedServer, listenGuarded } from '../services/grpc/server.js';
import type { TransportSecurity } from '../services/security/security.js';
import { CallerScopes, type AccountScope } from '../services/security/scope.js';

const TransactionClient = grpc.makeGenericClientConstructor(TransactionServiceDefinition, 'TransactionService');
type RawClient = grpc.Client & Record<string, Function>;
const KEY_CACHE_ENTRIES = 1_024;
const FINAL_WAIT_MS_MAX = 30_000; // an answer not final by then is answered UNAVAILABLE: look it up before resubmitting
// Batches a front holds (forwarded, or waiting to be final), as the engine bounds its own: one
// stream, and all clients together. Beyond them: RESOURCE_EXHAUSTED, at once. ~1 MB a full batch
// while it is forwarded; an answer waiting to be final holds only its ~8 KB of results.
const STREAM_BATCHES_IN_FLIGHT_MAX = 64;
export const FRONT_BATCHES_IN_FLIGHT_MAX = 1_024;
export const CLUSTER_SERVICE_NAME = 'txe.v1.ClusterService';
/** ClusterService.Attest as both sides speak it: the attestation's bytes pass as they are (the validator decodes and checks them). */
export const ATTEST_METHOD: grpc.MethodDefinition<Buffer, object> = {
  path: `/${CLUSTER_SERVICE_NAME}/Attest`, requestStream: false, responseStream: false,
  requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b,
  responseSerialize: (v: object) => Buffer.from(ClusterTypes.AttestReply.encode(v).finish()), responseDeserialize: (b: Buffer) => ClusterTypes.AttestReply.decode(b),
};
// The leader's refusals a client must see as they are; anything else is UNAVAILABLE (retry). A
// PERMISSION_DENIED or UNAUTHENTICATED from the leader means this validator's own certificate
// lacks a role or accounts: retrying would never help.
const PASSED_THROUGH = new Set([grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INVALID_ARGUMENT, grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED]);

/** What the front needs of its validator. */
export interface FrontParts {
  leaderEngine(): string | null; // host:port of the leader's engine, null while none is known
  trustedSigners(): KeySet;
  /** Resolves when block `height` is final and this replica holds it with `firstSeq`; rejects with why not. */
  waitFinal(height: number, firstSeq: number, timeoutMs: number): Promise<void>;
  status(): object;
  forwardCredentials(): grpc.ChannelCredentials; // mTLS to the leader's engine (the cluster's CA), or plaintext on loopback
  observe(phase: 'forward' | 'final_wait', seconds: number): void; // an ack-FINAL batch's time here
  attestation(bytes: Buffer): string | null; // another validator's attestation (ClusterService.Attest): null when counted, else why not
}

export class ValidatorFront {
  private client: { address: string; raw: RawClient } | null = null;
  private inFlight = 0;
  private readonly keys = new PublicKeyCache(KEY_CACHE_ENTRIES);
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });

  private constructor(private readonly server: grpc.Server, public port: number, private readonly parts: FrontParts, private readonly scopes: CallerScopes, private readonly security: TransportSecurity) {}

  static async start(host: string, port: number, parts: FrontParts, config: EngineConfig, security: TransportSecurity): Promise<ValidatorFront> {
    const server = guardedServer(config, security);
    const front = new ValidatorFront(server, 0, parts, new CallerScopes(security.proof), security);
    front.register();
    front.health.addToServer(server);
    front.port = await listenGuarded(server, host, port, config, security);
    return front;
  }

  setServing(serving: boolean): void {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', s);
    this.health.setStatus(SERVICE_NAME, s);
  }

  async close(): Promise<void> {
    this.client?.raw.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, 2_000);
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }

  private register(): void {
    this.server.addService(TransactionServiceDefinition, {
      SubmitBatch: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.handle(call.request, this.scopes.of(call)).then((r) => callback(null, r), (e: grpc.ServiceError) => callback(e));
      },
      SubmitStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => this.stream(call),
      GetTransaction: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => this.forwardRead('GetTransaction', call.request, this.scopes.of(call), callback),
      GetAccount: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => this.forwardRead('GetAccount', call.request, this.scopes.of(call), callback),
      StreamCommits: (call: grpc.ServerWritableStream<unknown, unknown>) => call.destroy(Object.assign(new Error('StreamCommits is answered by the leader\'s engine'), { code: grpc.status.UNIMPLEMENTED })),
    });
    const serialize = (t: typeof ClusterTypes.ValidatorStatus) => (v: unknown) => Buffer.from(t.encode(v as object).finish());
    this.server.addService({
      Status: {
        path: `/${CLUSTER_SERVICE_NAME}/Status`, requestStream: false, responseStream: false,
        requestSerialize: serialize(ClusterTypes.ClusterStatusRequest), requestDeserialize: (b: Buffer) => ClusterTypes.ClusterStatusRequest.decode(b),
        responseSerialize: serialize(ClusterTypes.ValidatorStatus), responseDeserialize: (b: Buffer) => ClusterTypes.ValidatorStatus.decode(b),
      },
      Attest: ATTEST_METHOD,
    }, {
      Status: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, this.parts.status()),
      Attest: (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const refused = this.parts.attestation(call.request);
        if (refused === null) callback(null, {});
        else callback(status(grpc.status.INVALID_ARGUMENT, refused));
      },
    });
  }

  /** One batch within the front's bound; RESOURCE_EXHAUSTED beyond it. */
  private async handle(raw: unknown, scope: AccountScope): Promise<SubmitBatchResponseWire | object> {
    if (this.inFlight >= FRONT_BATCHES_IN_FLIGHT_MAX) throw status(grpc.status.RESOURCE_EXHAUSTED, `this validator holds ${this.inFlight} batches (max ${FRONT_BATCHES_IN_FLIGHT_MAX}); retry with backoff`);
    this.inFlight++;
    try {
      return await this.handleOne(raw, scope);
    } finally {
      this.inFlight--;
    }
  }

  /** One batch: checked here, forwarded, and (ack FINAL) held until final. Rejects with a grpc status. */
  private async handleOne(raw: unknown, scope: AccountScope): Promise<SubmitBatchResponseWire | object> {
    if (raw instanceof DecodeError) throw status(grpc.status.INVALID_ARGUMENT, raw.message);
    const req = raw as SubmitBatchRequestWire;
    // The caller's accounts are checked here: the leader sees only the validator's certificate.
    const mode = req.auth === AuthModeWire.PER_TX ? 'per-tx' : 'batch-signed';
    const denied = scope.submitDenial(mode, req.txs ?? Buffer.alloc(0), req.signer?.length ? req.signer : null);
    if (denied !== null) throw this.deny(denied);
    const shed = this.shed(req);
    if (shed !== null) return shed;
    const final = req.ack === AckWire.ACK_FINAL;
    const forwarded = { ...req, ack: final ? AckWire.ACK_DURABLE : req.ack };
    const startedMs = performance.now();
    const answer = await this.forward(forwarded);
    if (!final || answer.statusCode !== 0 || u64ToNumber(answer.block) === 0) return answer;
    const durableMs = performance.now();
    this.parts.observe('forward', (durableMs - startedMs) / 1000);
    await this.parts.waitFinal(u64ToNumber(answer.block), u64ToNumber(answer.firstSeq), FINAL_WAIT_MS_MAX).catch((e: Error) => {
      throw status(grpc.status.UNAVAILABLE, `block ${u64ToNumber(answer.block)} was written but is not final: ${e.message}; look the batch up before resubmitting`);
    });
    this.parts.observe('final_wait', (performance.now() - durableMs) / 1000);
    return answer;
  }

  /** A BATCH_SIGNED batch with an untrusted signer or a bad signature, answered here; else null. */
  private shed(req: SubmitBatchRequestWire): object | null {
    if (req.auth !== AuthModeWire.BATCH_SIGNED || !req.txs || req.txs.length === 0 || req.txs.length % BODY_BYTES !== 0) return null;
    const txs = req.txs.length / BODY_BYTES;
    const signer = req.signer ?? Buffer.alloc(0);
    const trusted = signer.length === 32 && this.parts.trustedSigners().has(signer, 0);
    const key = trusted ? this.keys.get(signer) : null;
    const ok = key !== null && req.signature?.length === 64 && crypto.verify(null, crypto.createHash('sha256').update(req.txs).digest(), key, req.signature);
    if (ok) return null;
    const code = trusted ? Result.bad_signature : Result.unauthorized_signer;
    return { batchId: req.batchId ?? 0, firstSeq: 0, block: 0, results: Buffer.alloc(txs, code), accepted: 0, rejected: txs, statusCode: 0, statusMessage: '' };
  }

  private forward(req: object): Promise<SubmitBatchResponseWire> {
    const client = this.leaderClient();
    if (client === null) return Promise.reject(status(grpc.status.UNAVAILABLE, 'no leader is elected right now; retry shortly'));
    return new Promise((resolve, reject) => {
      client.SubmitBatch(req, (error: grpc.ServiceError | null, res: SubmitBatchResponseWire) => {
        if (error) reject(status(PASSED_THROUGH.has(error.code) ? error.code : grpc.status.UNAVAILABLE, `leader: ${error.details}`));
        else resolve(res);
      });
    });
  }

  /**
   * Reads (GetAccount, GetTransaction) are the leader engine's answers, passed through to a caller
   * whose accounts they concern (the engine answers the validator, which has all of them).
   */
  private forwardRead(method: 'GetAccount' | 'GetTransaction', request: unknown, scope: AccountScope, callback: grpc.sendUnaryData<unknown>): void {
    if (request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: request.message });
    // An account is checked before the lookup, a transaction after it (one it received counts too).
    const account = method === 'GetAccount' ? (request as { account?: Buffer }).account : undefined;
    const denied = account?.length === 32 ? scope.readDenial(account) : null;
    if (denied !== null) return callback(this.deny(denied));
    const client = this.leaderClient();
    if (client === null) return callback(status(grpc.status.UNAVAILABLE, 'no leader is elected right now; retry shortly'));
    client[method](request, (error: grpc.ServiceError | null, res: unknown) => {
      if (error) return callback(status(error.code, `leader: ${error.details}`));
      const denied = method === 'GetTransaction' ? scope.transactionDenial(res as { sender?: Uint8Array; recipient?: Uint8Array }) : null;
      if (denied !== null) return callback(this.deny(denied));
      callback(null, res);
    });
  }

  private deny(details: string): grpc.ServiceError {
    this.security.countDenied({ code: grpc.status.PERMISSION_DENIED, details });
    return status(grpc.status.PERMISSION_DENIED, details);
  }

  /**
   * A stream's batches go one by one through handle(); answers come back as each is ready (matched
   * by batch_id). As the engine's SubmitStream does: a client that stops reading its answers is
   * not read from either (pause until drain), so its batches wait in its own socket, not here.
   */
  private stream(call: grpc.ServerDuplexStream<unknown, unknown>): void {
    const scope = this.scopes.of(call);
    let open = 0;
    let ended = false;
    let gone = false;
    const done = () => { if (ended && open === 0 && !gone) { gone = true; call.end(); } };
    const write = (message: object) => {
      if (gone) return;
      if (!call.write(message)) call.pause();
    };
    call.on('drain', () => call.resume());
    call.on('data', (raw: unknown) => {
      const batchId = raw instanceof DecodeError ? 0 : (raw as SubmitBatchRequestWire).batchId ?? 0;
      if (open >= STREAM_BATCHES_IN_FLIGHT_MAX) {
        write({ batchId, statusCode: grpc.status.RESOURCE_EXHAUSTED, statusMessage: `${open} batches in flight on this stream (max ${STREAM_BATCHES_IN_FLIGHT_MAX}); wait for answers` });
        return;
      }
      open++;
      this.handle(raw, scope).then((r) => write(r), (e: grpc.ServiceError) => write({ batchId, statusCode: e.code, statusMessage: e.details ?? e.message }))
        .finally(() => { open--; done(); });
    });
    call.on('end', () => { ended = true; done(); });
    call.on('error', () => { gone = true; });
    call.on('cancelled', () => { gone = true; });
  }

  private leaderClient(): RawClient | null {
    const address = this.parts.leaderEngine();
    if (address === null) return null;
    if (this.client?.address !== address) {
      this.client?.raw.close();
      this.client = { address, raw: new TransactionClient(address, this.parts.forwardCredentials(), { 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 64 * 1024 * 1024 }) as unknown as RawClient };
    }
    return this.client.raw;
  }
}

function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}
