// Copies a trained checkpoint next to the page (runtime-browser/models/) with its model card
// (<name>.card.json, page/catalog.ts ModelCard): the scores are read from the recipe's own
// metrics.json by path, and the size and sha256 from the copied file, so no figure is typed by hand.
// Usage:
//   npx tsx runtime-browser/make-model-card.ts --weights runs/x/weights.safetensors --metrics runs/x/metrics.json \
//     --name polyp-pvt-mu-kvasir --title "..." --task "..." --trained-on "..." --command "..." \
//     --scores-on "..." --score "Dice=test.meanDice" [--score ...] [--note "..."] \
//     [--default --sample "Colonoscopy: polyp"] [--date YYYY-MM-DD]
//     [--input-stats stats.json]   (written by input-stats.ts from the training frames: the out-of-domain hint)
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCard, describeHeader, type ModelCard } from './page/catalog.ts';
import { readHeader } from './page/infer.ts';
import type { InputStats } from './page/domain.ts';
import { MODELS_DIR } from './serve.ts';

const REPEATED = new Set(['score', 'note']),
  SWITCHES = new Set(['default']);

function parse(argv: string[]): Record<string, string | string[] | boolean> {
  const out: Record<string, string | string[] | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)} (flags are --name value)`);
    const k = a.slice(2);
    if (SWITCHES.has(k)) {
      out[k] = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`--${k} needs a value`);
    if (REPEATED.has(k)) out[k] = [...((out[k] as string[] | undefined) ?? []), v];
    else out[k] = v;
  }
  return out;
}

/** The number at a dotted path of a JSON value ("test.meanDice"). */
function at(json: unknown, path: string): number {
  const v = path
    .split('.')
    .reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), json);
  if (typeof v !== 'number') throw new Error(`the metrics file has no number at "${path}"`);
  return v;
}

export function main(argv: string[]): void {
  const f = parse(argv);
  const need = (k: string) => {
    if (typeof f[k] !== 'string') throw new Error(`--${k} is required`);
    return f[k] as string;
  };
  const weights = need('weights'),
    metricsPath = need('metrics'),
    name = need('name');
  for (const p of [weights, metricsPath]) if (!existsSync(p)) throw new Error(`${p}: no such file`);
  const d = describeHeader(readHeader(new Uint8Array(readFileSync(weights))));
  if ('skip' in d) throw new Error(`${weights}: ${d.skip}`);
  if (d.untrained) throw new Error(`${weights}: its metadata says the weights are a random initialisation`);
  const metrics = JSON.parse(readFileSync(metricsPath, 'utf8')) as unknown;
  const scores: Record<string, number> = {};
  for (const s of (f.score as string[] | undefined) ?? []) {
    const [label, path] = s.split('=');
    if (!label || !path) throw new Error(`--score ${JSON.stringify(s)}: expected LABEL=json.path`);
    scores[label] = at(metrics, path);
  }
  mkdirSync(MODELS_DIR, { recursive: true });
  const dest = join(MODELS_DIR, `${name}.safetensors`);
  copyFileSync(weights, dest);
  const card: ModelCard = {
    title: need('title'),
    task: need('task'),
    trainedOn: need('trained-on'),
    command: need('command'),
    scores,
    scoresOn: need('scores-on'),
    bytes: statSync(dest).size,
    sha256: createHash('sha256').update(readFileSync(dest)).digest('hex'),
    date: typeof f.date === 'string' ? f.date : new Date(statSync(weights).mtimeMs).toISOString().slice(0, 10),
    ...(f.note ? { notes: f.note as string[] } : {}),
    ...(typeof f['input-stats'] === 'string'
      ? { inputStats: JSON.parse(readFileSync(f['input-stats'] as string, 'utf8')) as InputStats }
      : {}),
    ...(f.default ? { default: true } : {}),
    ...(typeof f.sample === 'string' ? { sample: f.sample } : {}),
  };
  checkCard(card, card.bytes);
  writeFileSync(join(MODELS_DIR, `${name}.card.json`), JSON.stringify(card, null, 2) + '\n');
  console.log(`wrote ${dest} (${card.bytes} bytes) and ${name}.card.json: ${JSON.stringify(scores)}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`runtime-browser/make-model-card.ts: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
