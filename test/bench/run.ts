// `npm run bench [filter]`: runs every test/bench/*.bench.ts (each default-exports an async
// function returning one or more tables), prints them as Markdown, and writes out/bench.json.
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import type { BenchTable } from './util.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const filter = process.argv.slice(2);

function markdown(t: BenchTable): string {
  const lines = [`### ${t.title}`, '', `| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`];
  for (const r of t.rows) lines.push(`| ${r.join(' | ')} |`);
  for (const n of t.notes ?? []) lines.push('', n);
  return lines.join('\n') + '\n';
}

const dev = await initNode();
console.log(`adapter: ${dev.adapterName}${dev.isCpuAdapter ? ' (CPU driver)' : ''}\n`);
const all: BenchTable[] = [];
for (const f of readdirSync(HERE)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort()) {
  if (filter.length && !filter.some((x) => f.includes(x))) continue;
  const mod = await import(pathToFileURL(join(HERE, f)).href);
  const out: BenchTable | BenchTable[] = await mod.default();
  for (const t of Array.isArray(out) ? out : [out]) {
    console.log(markdown(t));
    all.push(t);
  }
}
mkdirSync('out', { recursive: true });
writeFileSync(
  join('out', 'bench.json'),
  JSON.stringify({ adapter: dev.adapterName, date: new Date().toISOString(), tables: all }, null, 2),
);
await shutdown();
