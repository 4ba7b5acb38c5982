// The engine's transport security from the outside (issue 12), against a real `Engine` on
// loopback with certificates made by `txe certs`' own code:
//  - mTLS: each role reaches its services and is PERMISSION_DENIED elsewhere, with a message that
//    names the missing role; health stays open; GET /metrics needs the operator role;
//  - refusals in the handshake: no client certificate, one from another CA, an expired one, a
//    plaintext client, a TLS 1.2 client; the engine goes on serving the others;
//  - rotation: new server certificate files are taken into service within 2 s while a client keeps
//    submitting, and no call of that client fails;
//  - bearer tokens (TLS without mTLS): none or a wrong one is UNAUTHENTICATED, the wrong role
//    PERMISSION_DENIED, compared in constant time (roles.ts);
//  - the config refuses plaintext on a reachable address, tokens without TLS, a key that is not the
//    certificate's.
import crypto from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../engine/engine.js';
import { validateConfig } from '../../../engine/config.js';
import { TxeClient, clientCredentials, clientOptions, type ClientTls } from '../../../engine/client.js';
import { clientFiles, createCa, createClient, createNode, CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE } from '../../../engine/services/security/certs.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, perTxBatch, signedBatch, signer, testConfig, transfer, user } from '../../support/fixtures.js';
import { TLS_RELOAD_POLL_MS } from '../../../engine/services/security/tls-files.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-tls-'));
const otherCa = path.join(dir, 'other');
const live = path.join(dir, 'live'); // the files the engine serves, rewritten by the rotation test
const tlsOf = (name: string, caDir = dir): ClientTls => ({ caFile: path.join(dir, CA_CERT_FILE), certFile: path.join(caDir, clientFiles(name).cert), keyFile: path.join(caDir, clientFiles(name).key) });
const clients: TxeClient[] = [];
const connect = (address: string, t: ClientTls | null): TxeClient => {
  const c = new TxeClient(address, clientOptions(), clientCredentials(t));
  clients.push(c);
  return c;
};
const statusOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);
let nonce = 0n;
const alice = user('alice');
const bob = user('bob');
const oneMint = () => signedBatch([mint(crypto.randomBytes(32), ++nonce, 1n)]); // for a call that is let through
const probe = () => signedBatch([mint(crypto.randomBytes(32), nonce + 1n, 1n)]); // for one that is refused before the engine

beforeAll(async () => {
  mkdirSync(otherCa);
  mkdirSync(live);
  await createCa(dir);
  await createNode(dir, ['127.0.0.1', 'localhost']);
  for (const [name, roles] of [['sub', ['submitter']], ['appr', ['approver']], ['op', ['operator']]] as const) await createClient(dir, name, [...roles]);
  // Account scopes (scope.ts): alice acts for her own account only, svc for the test batch signer,
  // none for no account at all.
  await createClient(dir, 'alice', ['submitter'], { accounts: [alice.publicKey.toString('hex')] });
  await createClient(dir, 'svc', ['submitter'], { accounts: [signer.publicKey.toString('hex')] });
  await createClient(dir, 'none', ['submitter'], { accounts: [] });
  await createClient(dir, 'expired', ['submitter'], { notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  await createCa(otherCa);
  await createClient(otherCa, 'sub', ['submitter']);
  copyFileSync(path.join(dir, NODE_CERT_FILE), path.join(live, NODE_CERT_FILE));
  copyFileSync(path.join(dir, NODE_KEY_FILE), path.join(live, NODE_KEY_FILE));
});

afterAll(() => {
  for (const c of clients) c.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS 1.3 with client certificates', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.start(testConfig({
      tlsCertFile: path.join(live, NODE_CERT_FILE), tlsKeyFile: path.join(live, NODE_KEY_FILE), tlsClientCaFile: path.join(dir, CA_CERT_FILE),
    }));
  });
  afterAll(async () => { await engine.stop(); });

  it('lets each role call its services and refuses the others, naming the role', async () => {
    const sub = connect(engine.address, tlsOf('sub'));
    const r = await sub.submitBatch(oneMint());
    expect(r.results[0]).toBe(Result.committed);
    expect(await statusOf(sub.getStats())).toMatch(/^PERMISSION_DENIED: \/txe.v1.StatsService\/GetStats needs role operator; this caller has submitter$/);
    expect(await statusOf(sub.listWebhooks())).toMatch(/^PERMISSION_DENIED: .*needs role operator/);
    const appr = connect(engine.address, tlsOf('appr'));
    expect(await statusOf(appr.submitBatch(probe()))).toMatch(/^PERMISSION_DENIED: \/txe.v1.TransactionService\/SubmitBatch needs role submitter; this caller has approver$/);
    expect(await statusOf(appr.listApprovals())).toBe('OK');
    const op = connect(engine.address, tlsOf('op'));
    expect(await statusOf(op.getStats())).toBe('OK');
    expect(await statusOf(op.getAccount(crypto.randomBytes(32)))).toMatch(/^PERMISSION_DENIED: .*needs role submitter/);
    // Health needs no role (load balancers), only a certificate the CA signed.
    const health = await new Promise<string>((resolve) => {
      appr.raw.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.from([]), (b: Buffer) => b, {}, (e: grpc.ServiceError | null, v?: Buffer) => resolve(e ? `error ${e.code}` : `serving ${v?.toString('hex')}`));
    });
    expect(health).toBe('serving 0801'); // status: SERVING
  });

  it('lets a submitter act only for the accounts its certificate names, and admits nothing of a refused batch', async () => {
    const sub = connect(engine.address, tlsOf('sub')); // txe:account/*
    const aliceMintNonce = nonce + 1n;
    const funded = await sub.submitBatch(signedBatch([mint(alice.publicKey, ++nonce, 100n), mint(bob.publicKey, ++nonce, 100n)]));
    expect([...funded.results]).toEqual([Result.committed, Result.committed]);
    const mine = connect(engine.address, tlsOf('alice'));
    const sent = await mine.submitBatch(perTxBatch([transfer(alice, bob.publicKey, 1n, 5n)], [alice]));
    expect(sent.results[0]).toBe(Result.committed);
    // One transaction of another sender refuses the whole batch, before admission.
    const mixed = perTxBatch([transfer(alice, bob.publicKey, 2n, 1n), transfer(bob, alice.publicKey, 1n, 1n)], [alice, bob]);
    expect(await statusOf(mine.submitBatch(mixed))).toBe(`PERMISSION_DENIED: transaction 1: sender ${bob.publicKey.toString('hex')} is not one of this caller's accounts (its certificate or token names 1 account); nothing of the batch was admitted`);
    expect(String((await mine.getAccount(alice.publicKey)).nonce)).toBe('1'); // alice's nonce 2 was not taken
    expect(await statusOf(mine.submitBatch(signedBatch([mint(alice.publicKey, nonce + 1n, 1n)])))).toMatch(/^PERMISSION_DENIED: the batch signer [0-9a-f]{64} is not one of this caller's keys/);
    // Reads: its own account and the transactions it sent or received, nothing else.
    expect(await statusOf(mine.getAccount(bob.publicKey))).toMatch(new RegExp(`^PERMISSION_DENIED: account ${bob.publicKey.toString('hex')} is not one of this caller's`));
    expect(await statusOf(mine.getTransaction({ seq: sent.firstSeq }))).toBe('OK');
    expect(await statusOf(mine.getTransaction({ seq: funded.firstSeq + 1 }))).toMatch(/^PERMISSION_DENIED: the transaction is neither from nor to an account of this caller/);
    // By sender and nonce too: the issuer's mint to alice is hers (received), its mint to bob is not.
    expect(await statusOf(mine.getTransaction({ sender: issuer.publicKey, nonce: aliceMintNonce }))).toBe('OK');
    expect(await statusOf(mine.getTransaction({ sender: issuer.publicKey, nonce: aliceMintNonce + 1n }))).toMatch(/^PERMISSION_DENIED: the transaction is neither from nor to an account of this caller/);
    const commits = await new Promise<string>((resolve) => {
      const stream = mine.streamCommits(1);
      stream.on('data', () => undefined);
      stream.on('error', (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]}: ${e.details}`));
      stream.on('end', () => resolve('ended'));
    });
    expect(commits).toMatch(/^PERMISSION_DENIED: StreamCommits carries every account's transactions: it needs a certificate with SAN URI txe:account\/\*/);
    // A service holding the batch signer's key submits batch-signed batches for any sender.
    expect((await connect(engine.address, tlsOf('svc')).submitBatch(oneMint())).results[0]).toBe(Result.committed);
    // A submitter certificate that names no account can do nothing, and is told why.
    expect(await statusOf(connect(engine.address, tlsOf('none')).submitBatch(probe()))).toMatch(/its certificate or token names no accounts: add SAN URIs txe:account\/<key hex>/);
  });

  it('refuses in the handshake: no certificate, another CA, an expired one, plaintext, TLS 1.2', async () => {
    const refused = [
      connect(engine.address, { caFile: path.join(dir, CA_CERT_FILE) }),
      connect(engine.address, tlsOf('sub', otherCa)),
      connect(engine.address, tlsOf('expired')),
      connect(engine.address, null),
    ];
    for (const c of refused) expect(await statusOf(c.submitBatch(probe()))).toMatch(/^UNAVAILABLE/);
    const [host, port] = engine.address.split(':');
    const tls12 = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host, port: Number(port), maxVersion: 'TLSv1.2', ca: readFileSync(path.join(dir, CA_CERT_FILE)), ALPNProtocols: ['h2'],
        cert: readFileSync(tlsOf('sub').certFile!), key: readFileSync(tlsOf('sub').keyFile!) });
      socket.once('secureConnect', () => { resolve(`connected with ${socket.getProtocol()}`); socket.destroy(); });
      socket.once('error', (e) => resolve(e.message));
    });
    expect(tls12).toMatch(/protocol version|unsupported protocol|alert/i);
    expect((await connect(engine.address, tlsOf('sub')).submitBatch(oneMint())).results[0]).toBe(Result.committed); // still serving
  });

  it('serves GET /metrics over TLS to the operator role only', async () => {
    const get = (name: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const [host, port] = engine.metrics.address.split(':');
      https.get({ host, port: Number(port), path: '/metrics', ca: readFileSync(path.join(dir, CA_CERT_FILE)), cert: readFileSync(tlsOf(name).certFile!), key: readFileSync(tlsOf(name).keyFile!) }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      }).on('error', reject);
    });
    const operator = await get('op');
    expect(operator.status).toBe(200);
    expect(operator.body).toMatch(/txe_rpc_denied_total\{code="PERMISSION_DENIED"\} [1-9]/); // the refusals of the tests before
    const submitter = await get('sub');
    expect(submitter.status).toBe(403);
    expect(submitter.body).toMatch(/GET \/metrics needs role operator; this caller has submitter/);
  });

  it('takes rotated certificate files into service within 2 s, while a client keeps submitting', async () => {
    const sub = connect(engine.address, tlsOf('sub'));
    const serial = () => new Promise<string>((resolve, reject) => {
      const [host, port] = engine.address.split(':');
      const socket = tls.connect({ host, port: Number(port), ca: readFileSync(path.join(dir, CA_CERT_FILE)), ALPNProtocols: ['h2'], cert: readFileSync(tlsOf('sub').certFile!), key: readFileSync(tlsOf('sub').keyFile!) });
      socket.once('secureConnect', () => { resolve(socket.getPeerCertificate().serialNumber); socket.destroy(); });
      socket.once('error', reject);
    });
    const before = await serial();
    let running = true;
    const failures: string[] = [];
    let submitted = 0;
    const load = (async () => {
      while (running) {
        const r = await statusOf(sub.submitBatch(oneMint()));
        if (r !== 'OK') failures.push(r);
        submitted++;
      }
    })();
    const fresh = path.join(dir, 'fresh');
    mkdirSync(fresh);
    copyFileSync(path.join(dir, CA_CERT_FILE), path.join(fresh, CA_CERT_FILE));
    copyFileSync(path.join(dir, 'ca.key'), path.join(fresh, 'ca.key'));
    await createNode(fresh, ['127.0.0.1', 'localhost']);
    copyFileSync(path.join(fresh, NODE_KEY_FILE), path.join(live, NODE_KEY_FILE));
    copyFileSync(path.join(fresh, NODE_CERT_FILE), path.join(live, NODE_CERT_FILE));
    const rotatedAt = Date.now();
    let after = before;
    while (after === before && Date.now() - rotatedAt < 5_000) {
      await new Promise((r) => setTimeout(r, 100));
      after = await serial();
    }
    const tookMs = Date.now() - rotatedAt;
    running = false;
    await load;
    expect(after).not.toBe(before);
    expect(tookMs).toBeLessThan(2 * TLS_RELOAD_POLL_MS + 500); // a poll period, and the next connection
    expect(failures).toEqual([]);
    expect(submitted).toBeGreaterThan(0);
    expect(engine.security.tls!.rotations).toBeGreaterThanOrEqual(1);
  });
});

describe('connections per client certificate', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.start(testConfig({
      tlsCertFile: path.join(dir, NODE_CERT_FILE), tlsKeyFile: path.join(dir, NODE_KEY_FILE), tlsClientCaFile: path.join(dir, CA_CERT_FILE), grpcConnectionsPerClientMax: 2,
    }));
    nonce = 0n;
  });
  afterAll(async () => { await engine.stop(); });

  /** A raw TLS connection with `name`'s certificate; resolves once the handshake is done, with its close. */
  const hold = async (name: string) => {
    const [host, port] = engine.address.split(':');
    const socket = tls.connect({ host, port: Number(port), ca: readFileSync(path.join(dir, CA_CERT_FILE)), ALPNProtocols: ['h2'], cert: readFileSync(tlsOf(name).certFile!), key: readFileSync(tlsOf(name).keyFile!) });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    return { socket, closed };
  };

  it('closes a client\'s connection past grpcConnectionsPerClientMax, and serves other clients meanwhile', async () => {
    const held = [await hold('op'), await hold('op')];
    const third = await hold('op');
    await third.closed; // closed by the engine after the handshake
    for (const h of held) expect(h.socket.destroyed).toBe(false);
    const sub = connect(engine.address, tlsOf('sub')); // another certificate: its own share
    expect((await sub.submitBatch(oneMint())).results[0]).toBe(Result.committed);
    held[0].socket.destroy();
    await held[0].closed;
    const again = await hold('op'); // the freed share can be taken
    await new Promise((r) => setTimeout(r, 100));
    expect(again.socket.destroyed).toBe(false);
    for (const h of [held[1], again]) h.socket.destroy();
  });
});

describe('TLS 1.3 with bearer tokens', () => {
  const submitterToken = crypto.randomBytes(24).toString('base64url');
  const operatorToken = crypto.randomBytes(24).toString('base64url');
  const aliceToken = crypto.randomBytes(24).toString('base64url'); // acts for alice's account only
  let engine: Engine;
  beforeAll(async () => {
    nonce = 0n; // a new engine: the issuer starts again
    engine = await Engine.start(testConfig({
      tlsCertFile: path.join(dir, NODE_CERT_FILE), tlsKeyFile: path.join(dir, NODE_KEY_FILE),
      authTokens: { submitter: [submitterToken, { token: aliceToken, accounts: [alice.publicKey.toString('hex')] }], operator: [operatorToken] },
    }));
  });
  afterAll(async () => { await engine.stop(); });

  it('authorizes by token, refusing none, a wrong one and the wrong role', async () => {
    const ca = path.join(dir, CA_CERT_FILE);
    expect(await statusOf(connect(engine.address, { caFile: ca }).getStats())).toMatch(/^UNAUTHENTICATED: \/txe.v1.StatsService\/GetStats needs role operator: present metadata "authorization: Bearer <token>"/);
    expect(await statusOf(connect(engine.address, { caFile: ca, token: 'x'.repeat(40) }).getStats())).toMatch(/^UNAUTHENTICATED/);
    const sub = connect(engine.address, { caFile: ca, token: submitterToken });
    expect((await sub.submitBatch(oneMint())).results[0]).toBe(Result.committed);
    expect(await statusOf(sub.getStats())).toMatch(/^PERMISSION_DENIED: .*needs role operator; this caller has submitter/);
    expect(await statusOf(connect(engine.address, { caFile: ca, token: operatorToken }).getStats())).toBe('OK');
  });

  it('holds a token that names its accounts to them, as a certificate would be', async () => {
    const ca = path.join(dir, CA_CERT_FILE);
    const mine = connect(engine.address, { caFile: ca, token: aliceToken });
    expect(String((await mine.getAccount(alice.publicKey)).exists)).toBe('false');
    expect(await statusOf(mine.getAccount(bob.publicKey))).toMatch(/^PERMISSION_DENIED: account [0-9a-f]{64} is not one of this caller's \(its certificate or token names 1 account\)/);
    expect(await statusOf(mine.submitBatch(probe()))).toMatch(/^PERMISSION_DENIED: the batch signer/);
    expect(await statusOf(connect(engine.address, { caFile: ca, token: submitterToken }).getAccount(bob.publicKey))).toBe('OK'); // a token alone: every account
    expect(() => validateConfig(testConfig({ tlsCertFile: 'a', tlsKeyFile: 'b', authTokens: { submitter: [{ token: 'q'.repeat(40), accounts: ['nope'] }] } }) as unknown as Record<string, unknown>))
      .toThrow(/"accounts" must list 32-byte public keys in hex/);
  });
});

describe('transport security config', () => {
  it('refuses plaintext off loopback, tokens without TLS, mTLS without TLS, and a key that is not the certificate\'s', async () => {
    const check = (o: Parameters<typeof testConfig>[0]) => () => validateConfig(testConfig(o) as unknown as Record<string, unknown>);
    expect(check({})).not.toThrow();
    expect(check({ grpcHost: '0.0.0.0' })).toThrow(/listening on 0.0.0.0 without TLS/);
    expect(check({ authTokens: { submitter: ['y'.repeat(40)] } })).toThrow(/authTokens need TLS/);
    expect(check({ tlsClientCaFile: path.join(dir, CA_CERT_FILE) })).toThrow(/tlsClientCaFile \(mTLS\) needs tlsCertFile/);
    expect(check({ grpcHost: '0.0.0.0', tlsCertFile: path.join(dir, NODE_CERT_FILE), tlsKeyFile: path.join(dir, NODE_KEY_FILE) })).toThrow(/no way for callers to prove who they are/);
    expect(check({ authTokens: { admin: ['z'.repeat(40)] }, tlsCertFile: 'a', tlsKeyFile: 'b' })).toThrow(/unknown role admin/);
    expect(check({ authTokens: { submitter: ['short'] }, tlsCertFile: 'a', tlsKeyFile: 'b' })).toThrow(/at least 32 characters/);
    await expect(Engine.start(testConfig({ tlsCertFile: path.join(dir, NODE_CERT_FILE), tlsKeyFile: path.join(dir, clientFiles('sub').key) }))).rejects.toThrow(/do not make a TLS context/);
  });
});
