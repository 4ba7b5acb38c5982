/*
 * What a service embedding or calling txe imports: the client, the record format, batch signing,
 * result codes, and the engine itself with its config.
 */

export { TxeClient, type SubmitRequest, type SubmitResponse } from './engine/client.js';
export * from './engine/wire/record.js';
export { Result, resultName, isAccepted, type ResultCode } from './engine/wire/result.js';
export { batchDigest, signBatch, packBodies, packSigned } from './engine/wire/batch.js';
export { keypairFromSeed, generateKeypair, type Keypair } from './engine/wire/keys.js';
export { Engine } from './engine/engine.js';
export { loadConfig, defaultConfig, type EngineConfig } from './engine/config.js';
