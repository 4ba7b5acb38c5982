// The approval workflow end to end over gRPC, with the pg sink on a fresh database: a large transfer
// waits, votes arrive (bad ones included), it posts; another is rejected and its hold released; a
// third expires, and a watcher sees every change of both (the pending snapshot, then requested,
// voted and decided); the engine restarts in between and loses nothing (holds, votes, decisions).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeApproverFile } from '../../../engine/keys-file.js';
import { distFile } from '../../../engine/paths.js';
import { Engine } from '../../../engine/engine.js';
import { TxeClient, signVote } from '../../../engine/client.js';
import type { EngineConfig } from '../../../engine/config.js';
import { Result } from '../../../engine/core/result.js';
import { approver, globalPolicy, mint, signedBatch, testConfig, transfer, user } from '../../support/fixtures.js';
import { dropDatabase, freshDatabase } from '../../support/servers.js';
import { until, withTimeout } from '../../support/async.js';

const [a, b, c] = [approver('a'), approver('b'), approver('c')];
const stranger = approver('stranger');
const alice = user('alice').publicKey;
const bob = user('bob').publicKey;
const carol = user('carol').publicKey;
const dave = user('dave').publicKey;
const run = promisify(execFile);
const STATUS = { pending: 1, approved: 2, rejected: 3, expired: 4 };

let url: string;
let config: EngineConfig;
let engine: Engine;
let client: TxeClient;

async function start(): Promise<void> {
  engine = await Engine.start(config);
  client = new TxeClient(engine.address);
  await client.waitReady(5000);
}

async function restart(): Promise<void> {
  client.close();
  await engine.stop();
  await start();
}

async function submit(records: Parameters<typeof signedBatch>[0]) {
  return client.submitBatch({ ...signedBatch(records), ack: 'durable' });
}

const account = async (key: Buffer) => {
  const r = await client.getAccount(key) as { balance: string | number; held: string | number };
  return { balance: BigInt(String(r.balance)), held: BigInt(String(r.held)) };
};

const num = (v: unknown): number => Number(String(v)); // u64 fields arrive as Long
const grpcCode = (promise: Promise<unknown>) => promise.then(() => 'OK', (e: grpc.ServiceError) => grpc.status[e.code]);


beforeAll(async () => {
  url = await freshDatabase('approvals');
  config = testConfig({
    sinks: ['pg'], pgUrl: url, ack: 'durable', approvalSweepMs: 100,
    approvalPolicies: [
      globalPolicy(1000n, { approvers: [a, b, c], required: 2 }),
      { ...globalPolicy(100n, { approvers: [a], required: 1, account: dave }), timeoutMs: 400 },
    ],
  });
  await start();
  const minted = await submit([mint(alice, 1n, 10_000n), mint(dave, 2n, 1000n)]);
  expect(Array.from(minted.results)).toEqual([Result.committed, Result.committed]);
}, 60_000);

afterAll(async () => {
  client?.close();
  await engine?.stop();
  await dropDatabase(url);
});

describe('ApprovalService', () => {
  let heldSeq: number;
  let id: Buffer;

  it('holds a transfer at the threshold, answers pending_approval, and lists the approval', async () => {
    const r = await submit([transfer(alice, bob, 1n, 5000n), transfer(alice, bob, 2n, 999n)]);
    expect(Array.from(r.results)).toEqual([Result.pending_approval, Result.committed]);
    heldSeq = r.firstSeq;
    const approval = await client.getApproval({ seq: heldSeq });
    id = approval.id as Buffer;
    expect(id.length).toBe(32);
    expect(approval).toMatchObject({ status: STATUS.pending, policy: 'default', required: 2 });
    expect(String(approval.amount)).toBe('5000');
    expect(await account(alice)).toEqual({ balance: 9001n, held: 5000n });
    expect((await account(bob)).balance).toBe(999n);
    const listed = await client.listApprovals({ status: STATUS.pending }) as { approvals: { seq: string | number }[] };
    expect(listed.approvals.map((x) => num(x.seq))).toEqual([heldSeq]);
  });

  it('refuses bad votes with a clear status and records none of them', async () => {
    const approve = (key: typeof a, sig = signVote(id, 'approve', key.privateKey)) => client.vote('approve', id, key.publicKey, sig);
    expect(await grpcCode(approve(stranger))).toBe('PERMISSION_DENIED');
    expect(await grpcCode(approve(a, signVote(id, 'approve', b.privateKey)))).toBe('UNAUTHENTICATED'); // signed by another key
    expect(await grpcCode(approve(a, signVote(id, 'reject', a.privateKey)))).toBe('UNAUTHENTICATED'); // a rejection replayed as an approval
    expect(await grpcCode(client.vote('approve', id.subarray(0, 31), a.publicKey, signVote(id, 'approve', a.privateKey)))).toBe('INVALID_ARGUMENT');
    expect(await grpcCode(client.approve(Buffer.alloc(32, 9), a))).toBe('NOT_FOUND');
    const after = await client.getApproval({ id });
    expect(after.votes).toEqual([]);
  });

  it('counts one vote per approver, and keeps holds and votes across a restart', async () => {
    const first = await client.approve(id, a);
    expect(first).toMatchObject({ status: STATUS.pending });
    expect(first.votes).toHaveLength(1);
    expect(await grpcCode(client.approve(id, a))).toBe('ALREADY_EXISTS');
    await restart();
    const reloaded = await client.getApproval({ id });
    expect(reloaded).toMatchObject({ status: STATUS.pending });
    expect((reloaded.votes as { approver: Buffer }[])[0].approver.equals(a.publicKey)).toBe(true);
    expect(await account(alice)).toEqual({ balance: 9001n, held: 5000n });
  }, 30_000);

  it('posts the transfer on the M-th approval, as a new entry in the history', async () => {
    const decided = await client.approve(id, b);
    expect(decided).toMatchObject({ status: STATUS.approved });
    const decidedSeq = num(decided.decidedSeq);
    expect(decidedSeq).toBeGreaterThan(heldSeq);
    const entry = await client.getTransaction({ seq: decidedSeq }) as { body: Buffer; result: number };
    expect(entry.body[1]).toBe(3); // kind 3: approve
    expect(entry.body.subarray(96, 128).equals(id)).toBe(true); // memo: the approval id
    expect(await account(alice)).toEqual({ balance: 4001n, held: 0n });
    expect((await account(bob)).balance).toBe(5999n);
    expect(await grpcCode(client.approve(id, c))).toBe('FAILED_PRECONDITION');
  });

  it('voids a rejected transfer and expires another, releasing both holds, and streams every change to a watcher', async () => {
    const r = await submit([transfer(alice, carol, 3n, 4000n), transfer(alice, carol, 4n, 2n)]);
    expect(Array.from(r.results)).toEqual([Result.pending_approval, Result.insufficient_funds]); // the hold counts
    const held = await client.getApproval({ seq: r.firstSeq });
    // The watch asks for the pending approvals first. The server writes that snapshot after it has
    // registered the watch, so once the snapshot is in, every later change reaches the watcher.
    const events: { change: number; approval: { seq: string | number; status: number } }[] = [];
    const watch = client.watchApprovals(true);
    watch.on('data', (e) => events.push(e as (typeof events)[number]));
    watch.on('error', () => undefined);
    let expiringSeq = 0;
    try {
      await until('the watch registered (its snapshot)', () => (events.length > 0 ? true : null));
      expect(events.map((e) => [e.change, num(e.approval.seq)])).toEqual([[1, r.firstSeq]]); // snapshot: the one pending hold

      const rejected = await client.reject(held.id as Buffer, c);
      expect(rejected).toMatchObject({ status: STATUS.rejected });
      expect(await account(alice)).toEqual({ balance: 4001n, held: 0n });
      expect((await account(carol)).balance).toBe(0n);
      const after = await submit([transfer(alice, carol, 4n, 2n)]);
      expect(Array.from(after.results)).toEqual([Result.committed]);

      const expiring = await submit([transfer(dave, bob, 1n, 500n)]);
      expect(Array.from(expiring.results)).toEqual([Result.pending_approval]);
      expiringSeq = expiring.firstSeq;
      const expired = await until('expiry', async () => {
        const x = await client.getApproval({ seq: expiringSeq });
        return x.status === STATUS.expired ? x : null;
      });
      expect(num(expired.decidedSeq)).toBeGreaterThan(expiringSeq);
      expect(await account(dave)).toEqual({ balance: 1000n, held: 0n });
      expect(await grpcCode(client.approve(expired.id as Buffer, a))).toBe('FAILED_PRECONDITION');
      await until('the expiry streamed', () => (events.some((e) => e.change === 4 && num(e.approval.seq) === expiringSeq) ? true : null));
    } finally {
      watch.cancel();
    }
    const changesOf = (seq: number) => events.filter((e) => num(e.approval.seq) === seq).map((e) => e.change);
    expect(changesOf(r.firstSeq)).toEqual([1, 3, 4]); // snapshot, voted, decided
    expect(changesOf(expiringSeq)).toEqual([2, 4]); // requested, decided
  }, 20_000);

  it('keeps every approval and vote in PostgreSQL, and restarts with the same decided state', async () => {
    await restart();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const rows = await db.query<{ status: string; votes: string }>(
        `select a.status, (select count(*) from txe_approval_votes v where v.approval_id = a.id)::text as votes from txe_approvals a order by a.seq`);
      expect(rows.rows).toEqual([{ status: 'approved', votes: '2' }, { status: 'rejected', votes: '1' }, { status: 'expired', votes: '0' }]);
    } finally {
      await db.end();
    }
    const all = await client.listApprovals({}) as { approvals: { status: number }[] };
    expect(all.approvals.map((x) => x.status)).toEqual([STATUS.approved, STATUS.rejected, STATUS.expired]);
    expect((await engine.pipeline.inspect()).pending.size).toBe(0);
    expect(await account(alice)).toEqual({ balance: 3999n, held: 0n });
  }, 30_000);

  it('restarts after the policies change: the replay follows the history, new transfers the new policy', async () => {
    // approvalsDecidedKeptMax 1: only the newest decided approval is loaded into memory.
    config = { ...config, approvalsDecidedKeptMax: 1, approvalPolicies: [globalPolicy(1_000_000n, { approvers: [a], required: 1 })] };
    await restart(); // replays every block from genesis (no snapshot yet): the old holds must replay as holds
    const all = await client.listApprovals({}) as { approvals: { status: number }[] };
    expect(all.approvals.map((x) => x.status)).toEqual([STATUS.expired]);
    const first = await client.getApproval({ seq: heldSeq }); // older than memory keeps: read from PostgreSQL
    expect(first).toMatchObject({ status: STATUS.approved });
    expect(first.votes).toHaveLength(2);
    expect(await grpcCode(client.approve(id, c))).toBe('FAILED_PRECONDITION');
    const r = await submit([transfer(alice, bob, 5n, 3000n)]);
    expect(Array.from(r.results)).toEqual([Result.committed]);
  }, 30_000);

  it('lists and approves from the command line with an approver key file', async () => {
    const minted = await submit([mint(alice, 3n, 2_000_000n)]);
    expect(Array.from(minted.results)).toEqual([Result.committed]);
    const held = await submit([transfer(alice, bob, 6n, 1_500_000n)]);
    expect(Array.from(held.results)).toEqual([Result.pending_approval]);
    const keyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'txe-approver-')), 'a.json');
    writeApproverFile(keyFile, a);
    const txe = async (...args: string[]) => (await run(process.execPath, [distFile('cli/main.js'), 'approvals', ...args, '--target', engine.address])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    const pending = await txe('list', '--status', 'pending');
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ seq: String(held.firstSeq), status: 'pending', amount: '1500000', required: 1 });
    const [approved] = await txe('approve', pending[0].id, '--key', keyFile);
    expect(approved).toMatchObject({ status: 'approved', approvals: 1 });
    const [again] = await txe('get', String(held.firstSeq));
    expect(again.decided_seq).not.toBe('0');
    const refused = await run(process.execPath, [distFile('cli/main.js'), 'approvals', 'approve', pending[0].id, '--key', keyFile, '--target', engine.address]).catch((e: { stderr: string }) => e);
    expect((refused as { stderr: string }).stderr).toMatch(/was approved already/);
  }, 30_000);

  it('refuses webhooks without the kafka sink, saying why', async () => {
    const e = await withTimeout(client.listWebhooks().catch((error: grpc.ServiceError) => error), 5000, 'ListWebhooks') as grpc.ServiceError;
    expect(grpc.status[e.code]).toBe('FAILED_PRECONDITION');
    expect(e.details).toContain('kafka');
  });
});
