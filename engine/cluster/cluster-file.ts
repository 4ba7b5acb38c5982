/*
 * The cluster file (`txe cluster init` writes it, infra/cluster-up.sh through it): the same for all
 * four validators and for their clients. A client finds here the fronts to send to, the keys file,
 * and its TLS files (tls/client.<name>.crt and .key, from the cluster's own development CA).
 */

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ClientTls } from '../client.js';
import { clientTlsFiles } from '../services/security/certs.js';
import type { PeerCertificate } from 'node:tls';
import { ROLE_URI_PREFIX, certificateRoles } from '../services/security/roles.js';
import { ACCOUNT_URI_PREFIX, ALL_ACCOUNTS, AccountScope } from '../services/security/scope.js';
import { VALIDATORS } from './finality.js';

/** The cluster file (infra/cluster-up.sh writes it): the same for all four validators. */
export interface ClusterFile {
  name: string;
  etcd: string[];
  brokers: string[];
  blocksTopic: string;
  attestationsTopic: string;
  replicationFactor: number;
  keysFile: string; // txe keygen: the issuer and the trusted batch signer
  tlsDir?: string; // txe certs: ca.crt, node.crt/key (leader engines), client.validator.crt/key (fronts); absent: plaintext on loopback
  // engineVia: where the other validators' fronts reach this one's engine, and frontVia: where
  // the other validators hand this one their attestations (proxies that add network delay,
  // infra/cluster-up.sh with TXE_CLUSTER_DELAY_MS); default `engine` and `front`.
  validators: Array<{ id: number; publicKey: string; front: string; engine: string; engineVia?: string; frontVia?: string; metrics: string }>;
}

export function readClusterFile(file: string): ClusterFile {
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterFile;
  if (!Array.isArray(c.validators) || c.validators.length !== VALIDATORS) throw new Error(`${file}: a cluster has exactly ${VALIDATORS} validators, found ${c.validators?.length ?? 0}`);
  return c;
}


/** The cluster's TLS folder, absolute; null for a plaintext cluster (loopback only). */
export function clusterTlsDir(cluster: ClusterFile, clusterFile: string): string | null {
  return cluster.tlsDir ? path.resolve(path.dirname(path.resolve(clusterFile)), cluster.tlsDir) : null;
}

/** The TLS files of client `name` (cluster init makes validator, submitter and operator); null: plaintext cluster. */
export function clusterClientTls(clusterFile: string, name: string): ClientTls | null {
  const dir = clusterTlsDir(readClusterFile(clusterFile), clusterFile);
  if (dir === null) return null;
  const tls = clientTlsFiles(dir, name);
  if (!fs.existsSync(tls.certFile)) throw new Error(`${clusterFile}: no client certificate ${tls.certFile}; make one with txe certs create-client ${name} --dir ${dir} --roles ...`);
  return tls;
}

/**
 * Refuses a validator's own client certificate unless it may forward any caller's batches: role
 * submitter and every account (txe:account/*). A certificate made before accounts were scoped
 * names none, and the leader would refuse every forwarded batch.
 */
export function checkForwardingCertificate(tls: ClientTls): void {
  const san = new X509Certificate(fs.readFileSync(tls.certFile!)).subjectAltName ?? '';
  // Read as the servers read a peer's certificate: the same SAN string, the same parsers.
  const cert = { subjectaltname: san } as PeerCertificate;
  if (certificateRoles(cert).includes('submitter') && AccountScope.ofCertificate(cert).all) return;
  throw new Error(`${tls.certFile} must carry role submitter and every account (SAN URIs ${ROLE_URI_PREFIX}submitter, ${ACCOUNT_URI_PREFIX}${ALL_ACCOUNTS}) to forward clients' batches; it has: ${san || 'no SAN'}. Make it again: txe certs create-client validator --dir ${path.dirname(tls.certFile!)} --roles submitter,operator --accounts '*'`);
}

/** The validators' fronts, host:port,... (what TXE_CLUSTER_TARGETS lists). */
export function clusterTargets(clusterFile: string): string {
  return readClusterFile(clusterFile).validators.map((v) => v.front).join(',');
}

/** The keys file (issuer and trusted batch signer), absolute. */
export function clusterKeysFile(clusterFile: string): string {
  return path.resolve(path.dirname(path.resolve(clusterFile)), readClusterFile(clusterFile).keysFile);
}
