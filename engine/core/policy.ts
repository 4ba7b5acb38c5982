/*
 * Approval policies (DESIGN.md section 3): which transfers wait for approvers, who the approvers
 * are, how many must approve, and how long a hold may wait. They live in the config file:
 *
 *   "approvalPolicies": [
 *     { "name": "treasury", "account": "<hex sender>", "thresholdAmount": "1000",
 *       "approvers": ["<hex>", "<hex>", "<hex>"], "required": 2, "timeoutMs": 3600000 },
 *     { "name": "default", "account": null, "thresholdAmount": "1000000", ... }
 *   ]
 *
 * A sender's own policy wins over the global one (account null); a transfer of at least the
 * policy's threshold is held. The approvers, M and the timeout are copied into each approval when
 * it is requested, so editing a policy never changes an approval already waiting.
 */

import { PUBLIC_KEY_BYTES } from './record.js';

export interface ApprovalPolicy {
  name: string;
  account: string | null; // hex sender key; null = every sender without a policy of its own
  thresholdAmount: bigint; // transfers >= this are held
  approvers: string[]; // hex Ed25519 public keys
  required: number; // M of the N approvers
  timeoutMs: number; // a hold not decided by then is voided (expired)
}

export const APPROVAL_POLICIES_MAX = 1024;
const TIMEOUT_MS_MAX = 365 * 24 * 3600 * 1000;
const HEX_KEY = /^[0-9a-f]{64}$/;

/** Validates raw JSON policies; every error names the policy and the field. */
export function parseApprovalPolicies(raw: unknown): ApprovalPolicy[] {
  if (!Array.isArray(raw)) throw new Error('config approvalPolicies must be a list of policies');
  if (raw.length > APPROVAL_POLICIES_MAX) throw new Error(`config approvalPolicies: at most ${APPROVAL_POLICIES_MAX} policies, got ${raw.length}`);
  const policies = raw.map((p, i) => parsePolicy(p, i));
  const names = new Set<string>();
  const accounts = new Set<string | null>();
  for (const p of policies) {
    if (names.has(p.name)) throw new Error(`config approvalPolicies: two policies are named ${p.name}`);
    if (accounts.has(p.account)) throw new Error(`config approvalPolicies: two policies for ${p.account === null ? 'all senders (account null)' : `account ${p.account}`}`);
    names.add(p.name);
    accounts.add(p.account);
  }
  return policies;
}

function parsePolicy(raw: unknown, index: number): ApprovalPolicy {
  if (typeof raw !== 'object' || raw === null) throw new Error(`config approvalPolicies[${index}] must be an object`);
  const r = raw as Record<string, unknown>;
  const known = new Set(['name', 'account', 'thresholdAmount', 'approvers', 'required', 'timeoutMs']);
  const unknown = Object.keys(r).filter((k) => !known.has(k));
  const where = `config approvalPolicies[${index}]${typeof r.name === 'string' ? ` (${r.name})` : ''}`;
  if (unknown.length > 0) throw new Error(`${where}: unknown fields ${unknown.join(', ')}`);
  if (typeof r.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(r.name)) throw new Error(`${where}: name must be 1-64 letters, digits, _ . or -`);
  const account = r.account === undefined || r.account === null ? null : String(r.account).toLowerCase();
  if (account !== null && !HEX_KEY.test(account)) throw new Error(`${where}: account must be a 32-byte hex public key or null`);
  let threshold: bigint;
  try {
    threshold = BigInt(r.thresholdAmount as string | number);
  } catch {
    throw new Error(`${where}: thresholdAmount must be an integer amount, got ${String(r.thresholdAmount)}`);
  }
  if (threshold < 1n || threshold >= 1n << 64n) throw new Error(`${where}: thresholdAmount must be in [1, 2^64), got ${threshold}`);
  if (!Array.isArray(r.approvers) || r.approvers.length === 0) throw new Error(`${where}: approvers must be a non-empty list of hex public keys`);
  const approvers = r.approvers.map((a) => String(a).toLowerCase());
  for (const a of approvers) if (!HEX_KEY.test(a)) throw new Error(`${where}: approver ${a} is not a 32-byte hex public key`);
  if (new Set(approvers).size !== approvers.length) throw new Error(`${where}: an approver is listed twice`);
  const required = Number(r.required);
  if (!Number.isInteger(required) || required < 1 || required > approvers.length) throw new Error(`${where}: required must be in [1, ${approvers.length}] (the number of approvers), got ${String(r.required)}`);
  const timeoutMs = Number(r.timeoutMs);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > TIMEOUT_MS_MAX) throw new Error(`${where}: timeoutMs must be in [1, ${TIMEOUT_MS_MAX}], got ${String(r.timeoutMs)}`);
  return { name: r.name, account, thresholdAmount: threshold, approvers, required, timeoutMs };
}

/**
 * The sequencer's view of the policies: one u64 compare decides whether a transfer needs a policy
 * lookup at all (amount >= the smallest threshold), so a transfer below every threshold pays one
 * comparison. The lookup itself is a Map get on the sender key (rare: large transfers only).
 */
export class PolicyIndex {
  readonly minThreshold: bigint;
  private readonly byAccount = new Map<string, number>(); // latin1 key -> policy index
  private readonly global: number;

  constructor(readonly policies: readonly ApprovalPolicy[]) {
    let min = 0n;
    let global = -1;
    policies.forEach((p, i) => {
      if (p.account === null) global = i;
      else this.byAccount.set(Buffer.from(p.account, 'hex').toString('latin1'), i);
      if (min === 0n || p.thresholdAmount < min) min = p.thresholdAmount;
    });
    this.global = global;
    this.minThreshold = min;
  }

  get enabled(): boolean { return this.policies.length > 0; }

  /** The policy that holds this transfer, or null when it goes through at once. */
  holdingPolicy(bodies: Buffer, senderAt: number, amount: bigint): ApprovalPolicy | null {
    const own = this.byAccount.size > 0 ? this.byAccount.get(bodies.toString('latin1', senderAt, senderAt + PUBLIC_KEY_BYTES)) : undefined;
    const p = own ?? this.global;
    return p >= 0 && amount >= this.policies[p].thresholdAmount ? this.policies[p] : null;
  }
}
