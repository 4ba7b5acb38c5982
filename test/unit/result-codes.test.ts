// Proves that the result codes a client reads from proto/ are the ones the engine writes: the
// ResultCode enum in transaction.proto, the table in proto/README.md and engine/core/result.ts name
// the same code for every value, 0 is "unspecified" and never a result, and every rejection code
// survives the verify ring's verdict byte (VERDICT_REJECTED_FLAG | code) unchanged.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { RESULT_CODE_MAX, RESULT_NAMES, RESULT_UNSPECIFIED, Result, isAccepted, resultName } from '../../engine/core/result.js';
import { VERDICT_REJECTED_FLAG, VERDICT_UNVERIFIED, VERDICT_VALID } from '../../engine/ring/input-ring.js';
import { TRANSACTION_PROTO } from '../../engine/services/grpc/codec.js';
import { repoRoot } from '../../engine/paths.js';

const protoEnum = protobuf.loadSync(TRANSACTION_PROTO).lookupEnum('txe.v1.ResultCode').values;
const doc = readFileSync(path.join(repoRoot, 'proto', 'README.md'), 'utf8');
const results = doc.slice(doc.indexOf('\n## Results\n'), doc.indexOf('\n## ', doc.indexOf('\n## Results\n') + 1));
// Rows of the results table: | code | name | meaning |
const documented = new Map([...results.matchAll(/^\| (\d+) \| ([a-z_]+) \| [^|]+\|$/gm)].map((m) => [Number(m[1]), m[2]]));

describe('result codes', () => {
  it('has 0 as unspecified and no engine result there', () => {
    expect(RESULT_UNSPECIFIED).toBe(0);
    expect(protoEnum.RESULT_CODE_UNSPECIFIED).toBe(0);
    expect(resultName(0)).toBe('unspecified');
    expect(Object.values(Result)).not.toContain(0);
    expect(isAccepted(0)).toBe(false);
    expect(resultName(RESULT_CODE_MAX + 1)).toBe(`unknown(${RESULT_CODE_MAX + 1})`);
  });

  it('names every code the same way in transaction.proto, proto/README.md and result.ts', () => {
    const fromProto = Object.entries(protoEnum).map(([name, code]) => [code, name === 'RESULT_CODE_UNSPECIFIED' ? 'unspecified' : name.toLowerCase()]);
    const fromEngine = RESULT_NAMES.map((name, code) => [code, name]);
    expect(fromProto).toEqual(fromEngine);
    expect([...documented.entries()]).toEqual(fromEngine);
    expect(Math.max(...Object.values(protoEnum))).toBe(RESULT_CODE_MAX);
  });

  it('accepts only committed and pending_approval', () => {
    const accepted = RESULT_NAMES.filter((_, code) => isAccepted(code));
    expect(accepted).toEqual(['committed', 'pending_approval']);
  });

  it('keeps every rejection code intact through the verdict byte, distinct from unverified and valid', () => {
    for (let code = 0; code <= RESULT_CODE_MAX; code++) {
      if (code === RESULT_UNSPECIFIED || isAccepted(code)) continue;
      const verdict = VERDICT_REJECTED_FLAG | code;
      expect(verdict).toBeLessThan(256);
      expect(verdict).not.toBe(VERDICT_UNVERIFIED);
      expect(verdict).not.toBe(VERDICT_VALID);
      expect(verdict & ~VERDICT_REJECTED_FLAG).toBe(code); // what the sequencer reads back
    }
  });
});
