/* `txe validator` and `txe cluster init|status`: the four-validator cluster (engine/cluster/). */

import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { pino } from 'pino';
import { generateKeypair } from '../engine/core/keys.js';
import { generateKeysFile, readKeysFile, writeKeysFile } from '../engine/keys-file.js';
import { Validator } from '../engine/cluster/validator.js';
import { clusterClientTls, clusterTargets, readClusterFile, type ClusterFile } from '../engine/cluster/cluster-file.js';
import { LeaderElection } from '../engine/cluster/election.js';
import { ClusterTypes } from '../engine/cluster/attestation.js';
import { CLUSTER_SERVICE_NAME } from '../engine/cluster/front.js';
import { u64ToNumber } from '../engine/core/proto.js';
import { CA_CERT_FILE, clientFiles, createCa, createClient, createNode } from '../engine/services/security/certs.js';
import type { Role } from '../engine/services/security/roles.js';
import { clientCredentials, type ClientTls } from '../engine/client.js';
import { fail, targetTlsOf, withTlsOptions } from './client-flags.js';

const STATUS_TIMEOUT_MS = 3_000;
// validator: a front forwarding any caller's batches (every account); submitter: clients' batches
// (txe bench --cluster); operator: status and metrics.
const CLUSTER_CLIENTS: ReadonlyArray<readonly [string, Role[]]> = [['validator', ['submitter', 'operator']], ['submitter', ['submitter']], ['operator', ['operator']]];

export function registerClusterCommands(program: Command): void {
  program.command('validator')
    .description('run one validator of a cluster (infra/cluster-up.sh starts four): follow, verify, attest, campaign, lead')
    .requiredOption('--cluster <file>', 'the cluster file (txe cluster init)')
    .requiredOption('--id <n>', 'this validator: 1..4')
    .option('--data-dir <dir>', 'where it keeps its last signed height (default: beside the cluster file)')
    .option('--workers <n>', 'verify workers of its engine while it leads (default 1)')
    .action(async (flags: { cluster: string; id: string; dataDir?: string; workers?: string }) => {
      const log = pino({ base: { validator: Number(flags.id) } }, pino.destination(2));
      const cluster = readClusterFile(flags.cluster);
      const dir = path.dirname(path.resolve(flags.cluster));
      const keys = readKeysFile(path.resolve(dir, cluster.keysFile));
      const validator = new Validator(cluster, {
        clusterFile: flags.cluster, id: Number(flags.id), dataDir: flags.dataDir ?? dir, seedFile: path.join(dir, `validator-${flags.id}.seed`),
        engineConfig: { workers: Number(flags.workers ?? 1), issuers: [keys.issuer.publicKey.toString('hex')], trustedSigners: [keys.signer.publicKey.toString('hex')] },
      }, (level, message, fields) => log[level](fields ?? {}, message));
      await validator.start();
      const stop = async () => { await validator.close(); process.exit(0); };
      process.on('SIGTERM', () => void stop());
      process.on('SIGINT', () => void stop());
    });

  const cluster = program.command('cluster').description('a four-validator cluster: write its files, ask its validators');
  cluster.command('init')
    .description('write a cluster file, its keys file and four validator keys into a folder')
    .requiredOption('--dir <dir>', 'the folder')
    .option('--etcd <list>', 'etcd endpoints', '127.0.0.1:23790')
    .option('--brokers <list>', 'Kafka brokers', '127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096')
    .option('--replication-factor <n>', 'of the blocks and attestations topics', '3')
    .option('--front-port <n>', 'first validator front port (the others follow)', '7101')
    .option('--engine-port <n>', 'first leader-engine port', '7111')
    .option('--metrics-port <n>', 'first metrics port', '9101')
    .option('--engine-via-port <n>', "first port where fronts reach the leaders' engines through a proxy (network delay); default: the engine ports themselves")
    .option('--front-via-port <n>', "first port where validators reach each other's fronts through a proxy (network delay), to hand over attestations; default: the front ports themselves")
    .option('--name <name>', 'cluster name: etcd prefixes and topic names', 'txe')
    .option('--no-tls', 'plaintext between the validators (loopback only; to measure what mTLS costs)')
    .action(async (flags: Record<string, string>) => {
      fs.mkdirSync(flags.dir, { recursive: true });
      const keysFile = 'keys.json';
      if (!fs.existsSync(path.join(flags.dir, keysFile))) writeKeysFile(path.join(flags.dir, keysFile), generateKeysFile());
      const validators = [1, 2, 3, 4].map((id) => {
        const k = generateKeypair();
        fs.writeFileSync(path.join(flags.dir, `validator-${id}.seed`), k.seed.toString('hex'), { mode: 0o600 });
        return { id, publicKey: k.publicKey.toString('hex'), front: `127.0.0.1:${Number(flags.frontPort) + id - 1}`, engine: `127.0.0.1:${Number(flags.enginePort) + id - 1}`, ...(flags.engineViaPort ? { engineVia: `127.0.0.1:${Number(flags.engineViaPort) + id - 1}` } : {}), ...(flags.frontViaPort ? { frontVia: `127.0.0.1:${Number(flags.frontViaPort) + id - 1}` } : {}), metrics: `127.0.0.1:${Number(flags.metricsPort) + id - 1}` };
      });
      // mTLS everywhere: each front and leader's engine serves TLS 1.3 and asks for a client
      // certificate. The fronts forward to the leader's engine with the validator's (submitter);
      // clients present their own: submitter to send batches, operator for status and metrics.
      const tlsDir = path.join(flags.dir, 'tls');
      const tls = (flags as Record<string, unknown>).tls !== false;
      if (tls && !fs.existsSync(path.join(tlsDir, CA_CERT_FILE))) {
        fs.mkdirSync(tlsDir, { recursive: true });
        await createCa(tlsDir);
        await createNode(tlsDir, ['127.0.0.1', 'localhost']);
      }
      // Each client certificate a cluster needs, made if missing (a folder from before has the CA).
      for (const [name, roles] of CLUSTER_CLIENTS) {
        if (tls && !fs.existsSync(path.join(tlsDir, clientFiles(name).cert))) await createClient(tlsDir, name, roles);
      }
      const file: ClusterFile = {
        ...(tls ? { tlsDir: 'tls' } : {}),
        name: flags.name, etcd: flags.etcd.split(','), brokers: flags.brokers.split(','),
        blocksTopic: `${flags.name}.cluster.blocks`, attestationsTopic: `${flags.name}.cluster.attestations`,
        replicationFactor: Number(flags.replicationFactor), keysFile, validators,
      };
      fs.writeFileSync(path.join(flags.dir, 'cluster.json'), `${JSON.stringify(file, null, 2)}\n`);
      console.log(path.join(flags.dir, 'cluster.json'));
    });
  cluster.command('nginx')
    .description("print NGINX's upstream of the validators that are alive now, as etcd's election lists them")
    .requiredOption('--cluster <file>', 'the cluster file')
    .action(async (flags: { cluster: string }) => {
      const members = await withElection(flags.cluster, (election) => election.members());
      if (members.length === 0) throw new Error('no validator is campaigning in etcd: start them first');
      // Passive health checks (open-source NGINX has no active ones): a validator that refuses a
      // connection is left out for fail_timeout.
      console.log(`upstream txe_validators {\n${members.map((m) => `  server ${m.front} max_fails=1 fail_timeout=2s;`).join('\n')}\n}`);
    });
  cluster.command('step-down')
    .description("make the leader step down: revokes its etcd lease, so the next validator in line leads (the leader campaigns again, last in line)")
    .requiredOption('--cluster <file>', 'the cluster file')
    .action(async (flags: { cluster: string }) => {
      await withElection(flags.cluster, async (election) => {
        const leader = await election.leader();
        if (leader === null) throw new Error('no validator leads right now');
        if (!await election.depose(leader.term)) throw new Error(`validator ${leader.id} (term ${leader.term}) is no longer the leader`);
        console.log(JSON.stringify({ stepped_down: leader.id, term: leader.term }));
      });
    });
  withTlsOptions(cluster.command('status'), 'with --targets: ')
    .description('one JSON object per validator: id, role, term, height, final_height, state_hash')
    .option('--targets <list>', 'validator front addresses, host:port,... (a TLS cluster: with an operator certificate)')
    .option('--cluster <file>', "the cluster file: its fronts, and its operator certificate (tls/client.operator.*)")
    .action(async (flags: { targets?: string; cluster?: string } & Record<string, unknown>) => {
      if (!flags.targets && !flags.cluster) fail('status needs --targets LIST or --cluster FILE');
      const targets = flags.targets ?? clusterTargets(flags.cluster!);
      const tls = targetTlsOf(flags) ?? (flags.cluster ? clusterClientTls(flags.cluster, 'operator') : null);
      for (const target of targets.split(',')) console.log(JSON.stringify(await clusterStatus(target, tls).catch((e: Error) => ({ target, error: e.message }))));
    });
}

/** The cluster's election in etcd, looked at from outside (no campaign of its own). */
async function withElection<T>(clusterFile: string, use: (election: LeaderElection) => Promise<T>): Promise<T> {
  const file = readClusterFile(clusterFile);
  const election = new LeaderElection(file.etcd, file.name, { id: 0, engine: '', front: '' }, { elected: () => undefined, deposed: () => undefined });
  try {
    return await use(election);
  } finally {
    await election.close();
  }
}

export interface ValidatorStatusJson { id: number; role: string; term: number; height: number; final_height: number; state_hash: string; block_hash: string; faults: number; leader_id: number; target: string }

/** Asks one validator's front for its status (a TLS cluster: as an operator). */
export function clusterStatus(target: string, tls: ClientTls | null = null): Promise<ValidatorStatusJson> {
  const client = new grpc.Client(target, clientCredentials(tls));
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(`/${CLUSTER_SERVICE_NAME}/Status`, (v: object) => Buffer.from(ClusterTypes.ClusterStatusRequest.encode(v).finish()), (b: Buffer) => ClusterTypes.ValidatorStatus.decode(b), {},
      new grpc.Metadata(), { deadline: Date.now() + STATUS_TIMEOUT_MS }, (error, res) => {
        client.close();
        if (error || !res) return reject(error ?? new Error('no answer'));
        const s = res as unknown as Record<string, never>;
        resolve({ id: s.id, role: s.role, term: u64ToNumber(s.term), height: u64ToNumber(s.height), final_height: u64ToNumber(s.finalHeight), state_hash: Buffer.from(s.stateHash ?? []).toString('hex'), block_hash: Buffer.from(s.blockHash ?? []).toString('hex'), faults: u64ToNumber(s.faults), leader_id: s.leaderId ?? 0, target });
      });
  });
}
