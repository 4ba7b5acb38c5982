/*
 * Where the compiled files are. Worker threads must load JavaScript, so when the engine runs from
 * TypeScript sources (vitest), workers still come from dist/ (`npm run build` makes them).
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');
export const distRoot = path.join(repoRoot, 'dist');

export function distFile(relative: string): string {
  const file = path.join(distRoot, relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return file;
}

export const protoRoot = path.join(repoRoot, 'proto');
