/*
 * Node warns (DEP0123, once a process) when a TLS client sets the ServerName to an IP address, and
 * grpc-js sets it to the target's host: every txe command that reaches an engine or a validator by
 * its IP over TLS (`txe cluster status`, `txe bench --cluster`, the validators' forwards) printed
 * it on stderr. Nothing is wrong that a user could act on: the certificate is still checked against
 * that IP (the SAN that `txe certs` writes), and servers ignore an IP in SNI. Only that warning is
 * dropped; every other warning is printed as before.
 */

const IP_SERVERNAME_WARNING = 'DEP0123';

export function dropIpServernameWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === IP_SERVERNAME_WARNING) return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}
