// The Kafka sink replaces kafkajs's byte-at-a-time CRC-32C with crc-32's (kafka/crc32c.ts). A
// wrong checksum would make the broker refuse every record batch, so: the same value as kafkajs's
// own at every length around the 16-byte stride, and, in a fresh process, kafkajs's record batches
// carry it once installed.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../engine/stages/commit/kafka/crc32c.js';

const require = createRequire(import.meta.url);
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;

describe('CRC-32C for kafkajs', () => {
  it('agrees with kafkajs\'s own on empty, short, stride-edge and 1 MB inputs, and on the standard check value', () => {
    for (const length of [0, 1, 7, 15, 16, 17, 31, 32, 33, 1000, 1 << 20]) {
      const bytes = crypto.randomBytes(length);
      expect(crc32c(bytes), `length ${length}`).toBe(kafkajsCrc32c(bytes));
    }
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283); // CRC-32C's check value
  });

  it('is what kafkajs\'s record batches use once installed, before kafkajs loads its own', () => {
    const script = `
      import { createRequire } from 'node:module';
      import { installCrc32c, crc32c } from './dist/engine/stages/commit/kafka/crc32c.js'; // built by npm test first
      const require = createRequire(import.meta.url);
      const outcome = installCrc32c();
      const used = require('kafkajs/src/protocol/recordBatch/crc32C/index.js');
      const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js');
      console.log(JSON.stringify({ outcome, same: used === crc32c, again: installCrc32c(), batch: typeof RecordBatch }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ outcome: 'installed', same: true, again: 'installed', batch: 'function' });
  });
});
