/*
 * kafkajs checksums every record batch it produces with CRC-32C (Castagnoli), computed a byte at a
 * time in JavaScript: ~420 MB/s on this machine kind, 5% of the engine's main thread at the durable
 * maximum (bench/RESULTS.md, session 8). crc-32's slice-by-16 CRC-32C gives the same checksum at
 * ~1.5 GB/s.
 *
 * kafkajs has no option for it. Its record-batch module takes the function from
 * `src/protocol/recordBatch/crc32C/index.js` when it is first loaded, at the first produce or
 * fetch, so installing crc-32's function in Node's module cache under that path before then is
 * enough. kafkajs is pinned (package.json); if its module is not where this expects it, or was
 * loaded already, kafkajs keeps its own, which is only slower. Before it installs anything, the two
 * functions must agree on a sample.
 */

import { createRequire, Module } from 'node:module';
import crypto from 'node:crypto';
import CRC32C from 'crc-32/crc32c.js';

const require = createRequire(import.meta.url);
const KAFKAJS_CRC32C_MODULE = 'kafkajs/src/protocol/recordBatch/crc32C/index.js';
const SAMPLE_BYTES = 4099; // not a multiple of the 16-byte stride, so the tail loop is checked too

export type Crc32c = (bytes: Buffer) => number;

/** CRC-32C of `bytes` as an unsigned 32-bit integer, as kafkajs's own returns it. */
export const crc32c: Crc32c = (bytes) => CRC32C.buf(bytes) >>> 0;

export type Installed = 'installed' | 'already loaded' | 'not found';

let outcome: Installed | null = null;

/** Puts crc32c in place of kafkajs's own, once; says whether it could. */
export function installCrc32c(): Installed {
  outcome ??= install();
  return outcome;
}

function install(): Installed {
  let path: string;
  try {
    path = require.resolve(KAFKAJS_CRC32C_MODULE);
  } catch {
    return 'not found';
  }
  const cache = require.cache;
  if (cache[path]) return 'already loaded';
  const own = require(path) as Crc32c; // loads kafkajs's own, to compare; replaced below
  const sample = crypto.randomBytes(SAMPLE_BYTES);
  if (own(sample) !== crc32c(sample)) throw new Error('crc-32 and kafkajs disagree on a CRC-32C: refusing to replace kafkajs\'s');
  const replacement = new Module(path);
  replacement.filename = path;
  replacement.loaded = true;
  replacement.exports = crc32c;
  cache[path] = replacement;
  return 'installed';
}
