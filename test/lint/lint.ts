// `npm run lint`: the import rules of the layer diagram and the unused-code finder
// (rules.ts), over the module graph the TypeScript compiler builds (graph.ts), and the line-length
// limit over every tracked TypeScript and JavaScript module. Prints one line a
// finding (`file:line: rule: message`) and exits 1 if there is any. `--graph` prints the layer
// picture instead: which area imports which, with edge counts.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGraph, type RepoGraph } from './graph.ts';
import { ENTRIES, checkCycles, checkLayers, checkLineLength, checkUnused, type Finding } from './rules.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** engine/ by its first folder (engine/ops, engine/nn, ...) or root file; elsewhere the top folder. */
function areaName(f: string): string {
  const parts = f.split('/');
  if (parts[0] === 'engine') return parts.length > 2 ? `engine/${parts[1]}` : f.replace(/\.ts$/, '');
  if (parts[0] === 'runtime-browser' && parts[1] === 'page') return 'runtime-browser/page';
  return parts.length > 1 ? parts[0] : '(root)';
}

export function layerPicture(g: RepoGraph): string {
  const counts = new Map<string, number>();
  for (const e of g.edges) {
    const a = areaName(e.from),
      b = areaName(e.to);
    if (a === b || a === 'test') continue;
    counts.set(`${a} -> ${b}`, (counts.get(`${a} -> ${b}`) ?? 0) + 1);
  }
  const by = new Map<string, string[]>();
  for (const [k, n] of [...counts].sort()) {
    const [a, b] = k.split(' -> ');
    by.set(a, [...(by.get(a) ?? []), `${b} (${n})`]);
  }
  return [...by].map(([a, bs]) => `${a} -> ${bs.join(', ')}`).join('\n');
}

/** Tracked (and new, not ignored) .ts and .mjs files, relative to root. */
function sourceFiles(root: string): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.mjs'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f && existsSync(join(root, f))); // a deleted file stays listed until committed
}

export function lint(root = ROOT): Finding[] {
  const g = buildGraph(root, ENTRIES);
  const long = sourceFiles(root).flatMap((f) => checkLineLength(f, readFileSync(join(root, f), 'utf8')));
  return [...checkCycles(g), ...checkLayers(g), ...checkUnused(g), ...long];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--graph')) {
    console.log(layerPicture(buildGraph(ROOT, ENTRIES)));
  } else {
    const findings = lint();
    for (const f of findings) console.log(`${f.file}:${f.line}: ${f.rule}: ${f.message}`);
    console.log(findings.length ? `lint: ${findings.length} finding(s)` : 'lint: clean');
    process.exit(findings.length ? 1 : 0);
  }
}
