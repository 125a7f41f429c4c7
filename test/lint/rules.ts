// The layer diagram as data (ARCHITECTURE: recipe -> model -> module -> op -> kernel -> device),
// and the checks over the module graph: no import cycles, each area imports only the areas below
// it, code outside engine/ reaches the engine only through the package entries, and inside
// engine/ a lower layer never imports a higher one. Plus the dead-code checks: exports nobody
// uses and files nobody imports, and the line-length limit Prettier cannot enforce alone.
import type { RepoGraph } from './graph.ts';

/** package.json `exports`: the engine's public entry points. */
export const ENTRIES = [
  'engine/index.ts',
  'engine/nn/index.ts',
  'engine/optim/index.ts',
  'engine/data/index.ts',
  'engine/metrics/index.ts',
];

/** Which areas each area may import (longest prefix wins); test/ may import anything. */
const MAY_IMPORT: Record<string, string[]> = {
  'engine/': ['engine/'],
  'models/': ['engine/', 'models/'],
  'runtime-node/': ['engine/', 'runtime-node/'],
  'recipes/': ['engine/', 'models/', 'runtime-node/', 'recipes/'],
  // The page runs in the browser: no Node runtime under it.
  'runtime-browser/index.ts': ['engine/', 'runtime-browser/bench.ts'],
  'runtime-browser/page/': ['engine/', 'models/', 'runtime-browser/page/', 'runtime-browser/index.ts'],
  // Build, serve and asset scripts run in Node.
  'runtime-browser/': ['engine/', 'models/', 'runtime-node/', 'runtime-browser/'],
};

/** engine/ from the bottom up: a file may import its own layer and the ones below. */
const ENGINE_LAYERS: string[][] = [
  [
    'engine/tensor.ts',
    'engine/device.ts',
    'engine/shader.ts',
    'engine/uniforms.ts',
    'engine/pipelines.ts',
    'engine/warmup.ts',
    'engine/flags.ts',
    'engine/adapter.ts',
    'engine/measure.ts',
    'engine/op-times.ts',
    'engine/graph.ts',
    'engine/shape.ts',
    'engine/f16.ts',
    'engine/io/',
  ],
  ['engine/ops/'],
  ['engine/autograd.ts', 'engine/flat.ts', 'engine/data/', 'engine/metrics/'],
  ['engine/nn/'],
  ['engine/optim/'],
  ['engine/train/'],
  ['engine/index.ts'],
];

/** Files run as programs or read by tools rather than imported. */
const ROOTS = [
  /^test\//,
  /^vitest\.config\.ts$/,
  /^recipes\/[^/]+\/(\d\d-[^/]+|run-[^/]+)\.ts$/,
  /^runtime-browser\/(build|serve|make-demo-assets|make-model-card|input-stats)\.ts$/,
  /^runtime-browser\/page\/main\.ts$/,
  /^runtime-node\/synth\.ts$/,
];

export interface Finding {
  file: string;
  line: number;
  rule: string;
  message: string;
}

const area = (f: string) =>
  Object.keys(MAY_IMPORT)
    .filter((k) => f.startsWith(k))
    .sort((a, b) => b.length - a.length)[0];
const layerOf = (f: string) => ENGINE_LAYERS.findIndex((l) => l.some((p) => f.startsWith(p)));

export function checkLayers(g: RepoGraph): Finding[] {
  const out: Finding[] = [];
  for (const e of g.edges) {
    const a = area(e.from);
    if (!a) continue; // test/, root configs
    const allowed = MAY_IMPORT[a];
    if (!allowed.some((p) => e.to.startsWith(p))) {
      out.push({
        file: e.from,
        line: e.line,
        rule: 'layers',
        message: `${a} may not import ${e.to} (allowed: ${allowed.join(', ')})`,
      });
      continue;
    }
    if (!e.from.startsWith('engine/') && e.to.startsWith('engine/') && !ENTRIES.includes(e.to)) {
      out.push({
        file: e.from,
        line: e.line,
        rule: 'entry',
        message: `imports engine internals ${e.to}; import the package entry instead (${ENTRIES.join(', ')})`,
      });
    }
    if (e.from.startsWith('engine/') && e.to.startsWith('engine/')) {
      const lf = layerOf(e.from),
        lt = layerOf(e.to);
      if (lf < 0)
        out.push({
          file: e.from,
          line: e.line,
          rule: 'engine-layers',
          message: 'file is in no engine layer (test/lint/rules.ts ENGINE_LAYERS)',
        });
      else if (lt > lf)
        out.push({
          file: e.from,
          line: e.line,
          rule: 'engine-layers',
          message: `imports ${e.to}, a higher engine layer`,
        });
    }
  }
  return out;
}

/** Strongly connected components of the import graph (Tarjan), each cycle reported once. */
export function checkCycles(g: RepoGraph): Finding[] {
  const next = new Map<string, string[]>();
  // Type-only imports are erased before the code runs: only value imports can form a cycle.
  for (const e of g.edges) if (!e.typeOnly) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    stack: string[] = [],
    on = new Set<string>();
  const out: Finding[] = [];
  let n = 0;
  const strong = (v: string): void => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1)
        out.push({
          file: scc.sort()[0],
          line: 1,
          rule: 'cycle',
          message: `import cycle through ${scc.sort().join(', ')}`,
        });
    }
  };
  for (const f of g.files) if (!index.has(f)) strong(f);
  return out;
}

export function checkUnused(g: RepoGraph): Finding[] {
  const out: Finding[] = [];
  for (const x of g.exports) {
    if (x.isPublic || x.usedBy.size > 0 || x.usedInside || ROOTS.some((r) => r.test(x.file))) continue;
    out.push({ file: x.file, line: x.line, rule: 'unused', message: `export '${x.name}' is used nowhere: delete it` });
  }
  const imported = new Set(g.edges.map((e) => e.to));
  for (const f of g.files) {
    if (imported.has(f) || ENTRIES.includes(f) || ROOTS.some((r) => r.test(f))) continue;
    out.push({
      file: f,
      line: 1,
      rule: 'unused-file',
      message: 'no file imports this module and it is not a script: delete it or list it in test/lint/rules.ts ROOTS',
    });
  }
  return out;
}

/** Prettier's print width (.prettierrc); the source lines it cannot break must keep to it too. */
export const MAX_LINE = 120;

/**
 * Lines longer than MAX_LINE characters (code points). Prettier wraps code at this width but never
 * breaks strings, template literals, regular expressions or comments, so those are checked here.
 * A comment line holding a URL is exempt: a URL cannot be broken and stay usable.
 */
export function checkLineLength(file: string, text: string, max = MAX_LINE): Finding[] {
  const out: Finding[] = [];
  text.split('\n').forEach((line, i) => {
    const n = [...line].length;
    if (n <= max) return;
    if (/^\s*(\/\/|\/?\*)/.test(line) && /\b[a-z][a-z0-9+.-]*:\/\/\S/i.test(line)) return;
    out.push({ file, line: i + 1, rule: 'max-len', message: `${n} characters, more than ${max}: break the line` });
  });
  return out;
}
