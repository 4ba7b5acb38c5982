/*
 * The gRPC server interceptor that authorizes every call by role (roles.ts) before its handler
 * runs: a call without an identity is UNAUTHENTICATED, one without the role PERMISSION_DENIED, each
 * with a message that names the role and how to present it. The handler never sees such a call.
 */

import * as grpc from '@grpc/grpc-js';
import { certificateRoles, roleFor, type Role, type TokenRoles } from './roles.js';

/** How callers prove who they are: client certificates (mTLS), bearer tokens, or nothing (loopback dev). */
export type CallerProof = { kind: 'certificate' } | { kind: 'token'; tokens: TokenRoles } | { kind: 'none' };

export interface Denial { code: grpc.status; details: string }

/** Why this caller may not call `path`, or null if it may. */
export function denial(path: string, proof: CallerProof, cert: Parameters<typeof certificateRoles>[0], authorization: string | undefined): Denial | null {
  const needed = roleFor(path);
  if (needed === null || proof.kind === 'none') return null;
  const roles: Role[] = proof.kind === 'certificate' ? certificateRoles(cert) : proof.tokens.rolesOf(authorization);
  if (roles.includes(needed)) return null;
  const how = proof.kind === 'certificate' ? `a client certificate with SAN URI txe:role/${needed}` : `metadata "authorization: Bearer <token>" with a token of role ${needed}`;
  if (roles.length === 0) return { code: grpc.status.UNAUTHENTICATED, details: `${path} needs role ${needed}: present ${how}` };
  return { code: grpc.status.PERMISSION_DENIED, details: `${path} needs role ${needed}; this caller has ${roles.join(', ')}` };
}

export function authorizer(proof: CallerProof, onDenied: (path: string, d: Denial) => void): grpc.ServerInterceptor {
  return (method, call) => new grpc.ServerInterceptingCall(call, {
    start: (next) => next({
      onReceiveMetadata: (metadata, pass) => {
        const authorization = metadata.get('authorization')[0];
        const refused = denial(method.path, proof, call.getAuthContext()?.sslPeerCertificate, typeof authorization === 'string' ? authorization : undefined);
        if (refused === null) return pass(metadata);
        onDenied(method.path, refused);
        call.sendStatus({ code: refused.code, details: refused.details });
      },
    }),
  });
}
