/*
 * What a service embedding or calling txe imports: the client, the record format, batch signing,
 * result codes, approval votes, the webhook receiver's verify function, and the engine itself
 * with its config.
 */

export { TxeClient, signVote, type SubmitRequest, type SubmitResponse } from './engine/client.js';
export { approvalId, voteMessage, type VoteDecision } from './engine/core/decision.js';
export type { ApprovalPolicy } from './engine/core/policy.js';
export {
  verifyWebhook, WebhookVerificationError, webhookHeaders, signatureFor, generateWebhookSecret,
} from './engine/services/webhooks/signature.js';
export * from './engine/core/record.js';
export { Result, resultName, isAccepted, type ResultCode } from './engine/core/result.js';
export { batchDigest, signBatch, packBodies, packSigned } from './engine/core/batch.js';
export { keypairFromSeed, generateKeypair, type Keypair } from './engine/core/keys.js';
export { Engine } from './engine/engine.js';
export { loadConfig, defaultConfig, type EngineConfig } from './engine/config.js';
