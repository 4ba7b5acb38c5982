// The `txe` bin starts node with the engine's flags (engine.ts explains them), and so does every
// engine process that txe bench and the tests start; this keeps the two lists the same.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../engine/engine.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('engine node flags', () => {
  it('the txe bin\'s first line passes every one of them', () => {
    const shebang = fs.readFileSync(path.join(ROOT, 'cli/main.ts'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${ENGINE_NODE_FLAGS.join(' ')}`);
  });
});
