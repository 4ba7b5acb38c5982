/*
 * Development certificates for TLS and mTLS (`txe certs`), in the spirit of `cockroach cert`: a
 * CA, a server certificate for the hosts the engine answers on, and client certificates that name
 * their roles (SAN URI txe:role/<role>, roles.ts). ECDSA P-256 keys and SHA-256 signatures, made
 * with @peculiar/x509 over Node's WebCrypto: no OpenSSL process, no native code. Keys are written
 * as PKCS#8 PEM with mode 0600. A deployment brings its own CA (or KMS/HSM-held keys); these are
 * for development, tests and benchmarks.
 */

import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
// @peculiar/x509 resolves its ASN.1 providers through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ROLE_URI_PREFIX, type Role } from './roles.js';
import { ACCOUNT_URI_PREFIX, ALL_ACCOUNTS } from './scope.js';
import { isAccountEntry } from '../../config.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
export const CA_DAYS_DEFAULT = 3650;
export const LEAF_DAYS_DEFAULT = 365;

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const NODE_CERT_FILE = 'node.crt';
export const NODE_KEY_FILE = 'node.key';
export const clientFiles = (name: string) => ({ cert: `client.${name}.crt`, key: `client.${name}.key` });
/** The files a client `name` made in `dir` dials with: the CA to trust, its certificate and key. */
export const clientTlsFiles = (dir: string, name: string) => ({ caFile: path.join(dir, CA_CERT_FILE), certFile: path.join(dir, clientFiles(name).cert), keyFile: path.join(dir, clientFiles(name).key) });

interface Issuer { cert: x509.X509Certificate; key: CryptoKey }

/** Validity: from a minute ago (clock skew) for `days`, or an explicit window (tests: expired). */
export interface Validity { days?: number; notBefore?: Date; notAfter?: Date }

/** Creates ca.crt and ca.key in `dir`; refuses to overwrite an existing CA key. */
export async function createCa(dir: string, validity: Validity = {}): Promise<void> {
  const keyFile = path.join(dir, CA_KEY_FILE);
  if (existsSync(keyFile)) throw new Error(`${keyFile} exists: a CA is created once (delete it to start over)`);
  const keys = await generateKeys();
  const { notBefore, notAfter } = window(validity, CA_DAYS_DEFAULT);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: 'CN=txe development CA', notBefore, notAfter, keys, signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writePair(dir, CA_CERT_FILE, CA_KEY_FILE, cert, keys.privateKey);
}

/** node.crt / node.key: a server certificate for `hosts` (DNS names or IP addresses). */
export async function createNode(dir: string, hosts: string[], validity: Validity = {}, ca?: Issuer): Promise<void> {
  if (hosts.length === 0) throw new Error('a server certificate needs at least one host (for example 127.0.0.1,localhost)');
  const names = hosts.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h }) as x509.JsonGeneralName);
  await createLeaf(dir, NODE_CERT_FILE, NODE_KEY_FILE, `CN=${hosts[0]}`, names, x509.ExtendedKeyUsage.serverAuth, validity, ca);
}

/** A client certificate's validity and the accounts it acts for: 64-hex keys, or ['*'] (the default) for all. */
export interface ClientGrant extends Validity { accounts?: string[] }

/** client.<name>.crt / .key: a client certificate whose SAN URIs name its roles and its accounts (scope.ts). */
export async function createClient(dir: string, name: string, roles: Role[], grant: ClientGrant = {}, ca?: Issuer): Promise<void> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`client name ${JSON.stringify(name)}: use letters, digits, . _ -`);
  if (roles.length === 0) throw new Error('a client certificate needs at least one role');
  const accounts = grant.accounts ?? [ALL_ACCOUNTS];
  const bad = accounts.filter((a) => !isAccountEntry(a));
  if (bad.length > 0) throw new Error(`accounts must be 32-byte public keys in hex (64 digits) or ${ALL_ACCOUNTS}, got ${bad.join(', ')}`);
  const files = clientFiles(name);
  const names = [
    ...roles.map((r) => ({ type: 'url', value: `${ROLE_URI_PREFIX}${r}` }) as x509.JsonGeneralName),
    ...accounts.map((a) => ({ type: 'url', value: `${ACCOUNT_URI_PREFIX}${a.toLowerCase()}` }) as x509.JsonGeneralName),
  ];
  await createLeaf(dir, files.cert, files.key, `CN=${name}`, names, x509.ExtendedKeyUsage.clientAuth, grant, ca);
}

/** The CA of `dir` (ca.crt, ca.key), to sign with. */
export async function loadCa(dir: string): Promise<Issuer> {
  const cert = new x509.X509Certificate(readFileSync(path.join(dir, CA_CERT_FILE), 'utf8'));
  const pem = readFileSync(path.join(dir, CA_KEY_FILE), 'utf8');
  const der = x509.PemConverter.decodeFirst(pem);
  const key = await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']) as unknown as CryptoKey;
  return { cert, key };
}

async function createLeaf(dir: string, certFile: string, keyFile: string, subject: string, names: x509.JsonGeneralName[], usage: string, validity: Validity, ca?: Issuer): Promise<void> {
  const issuer = ca ?? await loadCa(dir);
  const keys = await generateKeys();
  const { notBefore, notAfter } = window(validity, LEAF_DAYS_DEFAULT);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(), subject, issuer: issuer.cert.subject, notBefore, notAfter,
    publicKey: keys.publicKey, signingKey: issuer.key, signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.cert),
    ],
  });
  await writePair(dir, certFile, keyFile, cert, keys.privateKey);
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as unknown as CryptoKeyPair;
}

async function writePair(dir: string, certFile: string, keyFile: string, cert: x509.X509Certificate, key: CryptoKey): Promise<void> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey);
  writeFileSync(path.join(dir, keyFile), x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), { mode: 0o600 });
  writeFileSync(path.join(dir, certFile), cert.toString('pem') + '\n');
}

function window(v: Validity, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = v.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = v.notAfter ?? new Date(notBefore.getTime() + (v.days ?? defaultDays) * DAY_MS);
  if (!(notAfter > notBefore)) throw new Error(`certificate validity ends (${notAfter.toISOString()}) before it starts (${notBefore.toISOString()})`);
  return { notBefore, notAfter };
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f; // a positive INTEGER
  return bytes.toString('hex');
}
