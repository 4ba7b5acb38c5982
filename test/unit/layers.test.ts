// Proves that the engine's dependencies point one way, as README's layout promises:
// core <- ring, metrics, config <- stages <- recovery <- pipeline <- services <- engine, client, cli.
// It reads every relative import of engine/, workers/ and cli/, maps each file to its layer by
// path, and fails when a file imports a higher layer, or when any import cycle appears.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

// Lower number = lower layer. A file may import its own layer or lower ones.
const LAYERS: Array<[RegExp, number, string]> = [
  [/^engine\/(core\/|paths\.ts$)/, 0, 'core'],
  [/^engine\/(ring\/|metrics\/|config\.ts$)/, 1, 'ring'],
  [/^(engine\/stages\/|workers\/(verify|sequencer)-worker\.ts$)/, 2, 'stages'],
  [/^engine\/recovery\//, 3, 'recovery'],
  [/^engine\/pipeline\.ts$/, 4, 'pipeline'],
  [/^(engine\/services\/|workers\/webhook-delivery\.ts$)/, 5, 'services'],
  [/^(engine\/(engine|client|keys-file)\.ts$|engine\/cluster\/|cli\/)/, 6, 'top'], // cluster/: validators built on whole engines
];

function layerOf(file: string): [number, string] {
  for (const [pattern, rank, name] of LAYERS) if (pattern.test(file)) return [rank, name];
  throw new Error(`${file} is in no layer: add it to LAYERS`);
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    return e.isDirectory() ? sourceFiles(rel) : e.name.endsWith('.ts') ? [rel] : [];
  });
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, '.ts'));
}

const files = ['engine', 'workers', 'cli'].flatMap(sourceFiles);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => files.includes(t))]));

describe('layers', () => {
  it('every engine file imports only its own layer or lower ones', () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const [rank, name] = layerOf(file);
      for (const t of targets) {
        const [targetRank, targetName] = layerOf(t);
        if (targetRank > rank) upward.push(`${file} (${name}) imports ${t} (${targetName})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('there is no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const walk = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') { cycles.push([...trail.slice(trail.indexOf(file)), file].join(' -> ')); return; }
      state.set(file, 'open');
      for (const t of graph.get(file) ?? []) walk(t, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) walk(file, []);
    expect(cycles).toEqual([]);
  });

  it('the check sees the imports it judges (a test that cannot fail is no test)', () => {
    expect(graph.get('engine/pipeline.ts')).toContain('engine/core/sequencer.ts');
    expect(layerOf('engine/services/grpc/server.ts')[0]).toBeGreaterThan(layerOf('engine/pipeline.ts')[0]);
  });
});
