// Two engine checkouts side by side on one training step: alternates processes of
// test/bench/step-cli.ts (one per checkout per round, order swapped every round so drifting load
// hits both alike), then prints the median step time of each, the ratio, the spread and the CPU.
//   npx tsx test/bench/ab.ts --base /path/to/old/checkout [--head /path/to/new/checkout]
//     [--rounds 5] [--model eva] [--batch 8] [--size 224] [--steps 1] [--profile]
// The step CLI always comes from this checkout; --base and --head (default: this checkout) only
// pick the engines it imports. Give --head a frozen checkout if this one changes during the run.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const here = resolve(import.meta.dirname, '..', '..');
const base = flag('base', '');
if (!base)
  throw new Error('--base: give the path of the checkout to compare against (e.g. a git worktree of the old commit)');
const head = resolve(flag('head', here));
const rounds = Number(flag('rounds', '5'));
const pass = ['model', 'batch', 'size', 'steps', 'warmup'].flatMap((k) =>
  argv.includes(`--${k}`) ? [`--${k}`, flag(k, '')] : [],
);
const profile = argv.includes('--profile') ? ['--profile'] : [];
const cli = join(here, 'test', 'bench', 'step-cli.ts');

interface Run {
  msPerStep: number;
  cpuMsPerStep: number;
  stepsMs: number[];
  glueShare?: number;
  kernelMs?: number;
  adapter: string;
}
const runs: Record<'base' | 'this', Run[]> = { base: [], this: [] };
for (let r = 0; r < rounds; r++) {
  for (const which of (r % 2 ? ['this', 'base'] : ['base', 'this']) as ('base' | 'this')[]) {
    const root = which === 'base' ? resolve(base) : head;
    const p = spawnSync(process.execPath, ['--import', 'tsx', cli, '--root', root, ...pass, ...profile], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    const line = p.stdout
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{'));
    if (!line) throw new Error(`${which} (round ${r + 1}) printed no result: ${p.stderr.slice(-500)}`);
    const res = JSON.parse(line) as Run;
    runs[which].push(res);
    const glue =
      res.glueShare === undefined
        ? ''
        : `, glue ${(100 * res.glueShare).toFixed(1)}% of ${(res.kernelMs! / 1000).toFixed(2)} s kernel time`;
    console.error(
      `round ${r + 1} ${which}: ${(res.msPerStep / 1000).toFixed(2)} s/step, ` +
        `${(res.cpuMsPerStep / 1000).toFixed(2)} CPU-s/step${glue} (load ${loadavg()[0].toFixed(1)})`,
    );
  }
}
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summary = (k: 'base' | 'this') => {
  const ms = runs[k].map((r) => r.msPerStep);
  const cpu = runs[k].map((r) => r.cpuMsPerStep);
  const glue = runs[k].filter((r) => r.glueShare !== undefined).map((r) => r.glueShare!);
  return {
    median: med(ms),
    min: Math.min(...ms),
    max: Math.max(...ms),
    cpu: med(cpu),
    cpuMin: Math.min(...cpu),
    cpuMax: Math.max(...cpu),
    glue: glue.length ? med(glue) : undefined,
  };
};
const [b, t] = [summary('base'), summary('this')];
console.log(
  JSON.stringify({
    cpu: cpus()[0]?.model,
    adapter: runs.this[0].adapter,
    rounds,
    args: pass,
    base: b,
    this: t,
    speedup: b.median / t.median,
    runs,
  }),
);
const pct = (x?: number) => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
const s = (x: number) => (x / 1000).toFixed(2);
console.log(
  '\n| checkout | wall s/step median (min-max) | CPU s/step median (min-max) | glue share of kernel time |\n' +
    '|---|---|---|---|',
);
console.log(
  `| base (${resolve(base)}) | ${s(b.median)} (${s(b.min)}-${s(b.max)}) | ${s(b.cpu)} ` +
    `(${s(b.cpuMin)}-${s(b.cpuMax)}) | ${pct(b.glue)} |`,
);
console.log(
  `| head (${head}) | ${s(t.median)} (${s(t.min)}-${s(t.max)}) | ${s(t.cpu)} ` +
    `(${s(t.cpuMin)}-${s(t.cpuMax)}) | ${pct(t.glue)} |`,
);
const load = loadavg()
  .map((x) => x.toFixed(1))
  .join(' ');
console.log(
  `\nspeedup ${(b.median / t.median).toFixed(2)}x wall, ${(b.cpu / t.cpu).toFixed(2)}x CPU time, ` +
    `over ${rounds} alternating rounds; CPU ${cpus()[0]?.model}; ${runs.this[0].adapter}; load ${load}`,
);
