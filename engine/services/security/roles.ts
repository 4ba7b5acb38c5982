/*
 * Who may call what (issue 12). Every RPC needs one role; health checks and reflection need none.
 *
 *   role        may call                                           why
 *   submitter   txe.v1.TransactionService/*                        submit batches, read transactions, accounts, commits
 *   approver    txe.v1.ApprovalService/*                           read approvals and vote
 *   operator    txe.v1.WebhookService/*, txe.v1.StatsService/*,    manage webhooks, read stats (and GET /metrics),
 *               txe.v1.ClusterService/*                            ask a cluster validator for its status
 *   (none)      grpc.health.v1.Health/*, grpc.reflection.*         load balancers and grpcurl
 *
 * A caller's roles come from its client certificate (mTLS: each SAN URI txe:role/<role>; the TLS
 * layer has already checked the certificate against the client CA), or else from a bearer token
 * (metadata `authorization: Bearer <token>`, each token configured for one role, compared in
 * constant time). A method outside the table needs the operator role: deny by default.
 *
 * Cost: one lookup of the method path and a scan of the certificate's SAN string (or one SHA-256
 * of the token) per call, not per batch of a stream: nothing on the per-transaction path.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { ALL_ACCOUNTS, AUTH_ROLES, authTokenOf, parseAuthTokens, type AuthTokenEntry } from '../../config.js';

export const ROLES = AUTH_ROLES;
export type Role = (typeof ROLES)[number];

export const ROLE_URI_PREFIX = 'txe:role/';

const SERVICE_ROLES: Record<string, Role | null> = {
  'txe.v1.TransactionService': 'submitter',
  'txe.v1.ApprovalService': 'approver',
  'txe.v1.WebhookService': 'operator',
  'txe.v1.StatsService': 'operator',
  'txe.v1.ClusterService': 'operator',
  'grpc.health.v1.Health': null,
  'grpc.reflection.v1.ServerReflection': null,
  'grpc.reflection.v1alpha.ServerReflection': null,
};

/** The role a method path (/package.Service/Method) needs; null: open to every caller. */
export function roleFor(path: string): Role | null {
  const service = path.split('/')[1] ?? '';
  return service in SERVICE_ROLES ? SERVICE_ROLES[service] : 'operator';
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** The roles a client certificate names in its SAN URIs (txe:role/<role>); unknown roles are ignored. */
export function certificateRoles(cert: PeerCertificate | undefined): Role[] {
  const san = cert?.subjectaltname ?? '';
  const roles: Role[] = [];
  for (const entry of san.split(',')) {
    const trimmed = entry.trim();
    if (!trimmed.startsWith(`URI:${ROLE_URI_PREFIX}`)) continue;
    const role = trimmed.slice(`URI:${ROLE_URI_PREFIX}`.length);
    if (isRole(role) && !roles.includes(role)) roles.push(role);
  }
  return roles;
}

/**
 * Bearer tokens, one role each, kept as SHA-256 digests and compared in constant time, with the
 * accounts each acts for (hex keys, ['*'] for all: a token given alone acts for every account).
 */
export class TokenRoles {
  private readonly digests: { digest: Buffer; role: Role; accounts: string[] }[];

  /** `tokens` as config has them; checked again here (parseAuthTokens), for a config built without loadConfig. */
  constructor(tokens: Record<string, AuthTokenEntry[]>) {
    this.digests = [];
    for (const [role, list] of Object.entries(parseAuthTokens(tokens))) {
      for (const entry of list) this.digests.push({ digest: sha256(authTokenOf(entry)), role: role as Role, accounts: typeof entry === 'string' ? [ALL_ACCOUNTS] : entry.accounts });
    }
  }

  get size(): number { return this.digests.length; }

  /** The roles of the token in an `authorization: Bearer …` value; every digest is compared, match or not. */
  rolesOf(authorization: string | undefined): Role[] {
    const roles: Role[] = [];
    for (const d of this.matching(authorization)) if (!roles.includes(d.role)) roles.push(d.role);
    return roles;
  }

  /** The accounts the token acts for (the submitter entry's, else the first match's); [] for no token. */
  accountsOf(authorization: string | undefined): string[] {
    const matches = this.matching(authorization);
    return (matches.find((d) => d.role === 'submitter') ?? matches[0])?.accounts ?? [];
  }

  private matching(authorization: string | undefined): { role: Role; accounts: string[] }[] {
    const match = /^Bearer (\S+)$/.exec(authorization ?? '');
    if (match === null) return [];
    const digest = sha256(match[1]);
    return this.digests.filter((d) => timingSafeEqual(d.digest, digest));
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
