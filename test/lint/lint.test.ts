// The lint rules over small hand-made module graphs: each rule fires on the case it exists for
// and stays quiet on the allowed one (npm run lint runs them over the real tree).
import { describe, it, expect } from 'vitest';
import { MAX_LINE, checkCycles, checkLayers, checkLineLength, checkUnused } from './rules.ts';
import type { Edge, ExportInfo, RepoGraph } from './graph.ts';

const edge = (from: string, to: string, typeOnly = false): Edge => ({ from, to, typeOnly, line: 1 });
const graph = (edges: Edge[], exports: ExportInfo[] = []): RepoGraph => ({
  root: '/',
  files: [...new Set(edges.flatMap((e) => [e.from, e.to]))],
  edges,
  exports,
});
const exp = (file: string, name: string, o: Partial<ExportInfo> = {}): ExportInfo => ({
  file,
  name,
  line: 3,
  usedBy: new Set(),
  usedInside: false,
  isPublic: false,
  ...o,
});

describe('lint rules', () => {
  it('a value import cycle is an error; a type-only back edge is not', () => {
    expect(
      checkCycles(graph([edge('engine/a.ts', 'engine/b.ts'), edge('engine/b.ts', 'engine/a.ts')])).map((f) => f.rule),
    ).toEqual(['cycle']);
    expect(checkCycles(graph([edge('engine/a.ts', 'engine/b.ts'), edge('engine/b.ts', 'engine/a.ts', true)]))).toEqual(
      [],
    );
  });

  it('outside engine/ only the package entries may be imported; areas import only the areas below them', () => {
    const rules = (e: Edge) => checkLayers(graph([e])).map((f) => f.rule);
    expect(rules(edge('models/m.ts', 'engine/nn/index.ts'))).toEqual([]);
    expect(rules(edge('models/m.ts', 'engine/ops/conv.ts'))).toEqual(['entry']);
    expect(rules(edge('models/m.ts', 'recipes/x/kit.ts'))).toEqual(['layers']);
    expect(rules(edge('engine/tensor.ts', 'models/m.ts'))).toEqual(['layers']);
    expect(rules(edge('runtime-browser/page/main.ts', 'runtime-node/index.ts'))).toEqual(['layers']);
    expect(rules(edge('test/x.test.ts', 'engine/ops/conv.ts'))).toEqual([]);
  });

  it('inside engine/ a lower layer never imports a higher one', () => {
    expect(checkLayers(graph([edge('engine/nn/layers.ts', 'engine/ops/conv.ts')]))).toEqual([]);
    expect(checkLayers(graph([edge('engine/ops/conv.ts', 'engine/nn/layers.ts')])).map((f) => f.rule)).toEqual([
      'engine-layers',
    ]);
    expect(checkLayers(graph([edge('engine/tensor.ts', 'engine/autograd.ts')])).map((f) => f.rule)).toEqual([
      'engine-layers',
    ]);
  });

  it('an export used nowhere (not public, not used in its file) is reported; so is a module nobody imports', () => {
    const g = graph(
      [edge('models/a.ts', 'engine/index.ts'), edge('recipes/x/01-run.ts', 'models/a.ts')],
      [
        exp('models/a.ts', 'dead'),
        exp('models/a.ts', 'helper', { usedInside: true }),
        exp('models/a.ts', 'used', { usedBy: new Set(['recipes/x/01-run.ts']) }),
        exp('engine/ops/x.ts', 'publicOp', { isPublic: true }),
      ],
    );
    g.files.push('models/orphan.ts');
    expect(checkUnused(g).map((f) => `${f.rule} ${f.file} ${f.message.split(' ')[1] ?? ''}`)).toEqual([
      "unused models/a.ts 'dead'",
      'unused-file models/orphan.ts file',
    ]);
  });

  it('a line over 120 characters is reported with its number; a URL in a comment is exempt', () => {
    expect(MAX_LINE).toBe(120);
    const long = `const s = '${'x'.repeat(120)}';`;
    const text = ['ok', 'y'.repeat(120), long, '  // see https://example.org/' + 'p'.repeat(120)].join('\n');
    expect(checkLineLength('a.ts', text).map((f) => `${f.rule} ${f.line}`)).toEqual(['max-len 3']);
    // Code points, not UTF-16 units: 120 CJK characters or emoji fit.
    expect(checkLineLength('a.ts', '息'.repeat(120) + '\n' + '😀'.repeat(120))).toEqual([]);
    // The exemption is for comments only: a URL in a string still counts.
    const url = `const u = 'https://example.org/${'p'.repeat(120)}';`;
    expect(checkLineLength('a.ts', url).map((f) => f.line)).toEqual([1]);
    expect(checkLineLength('a.ts', ' * ' + 'z'.repeat(118)).map((f) => f.line)).toEqual([1]);
  });
});
