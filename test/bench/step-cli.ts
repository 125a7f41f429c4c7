// One process, one engine checkout, one model: times training steps and prints one JSON line.
// `--root` points at the checkout whose engine is timed (default: this one), so two commits can
// be compared side by side by alternating processes (test/bench/ab.ts). With --profile it runs
// one more step at DEBUG 1 (a timestamp per dispatch) and reports kernel time per op, including
// the share of memory-bound glue (elementwise, copies, fills).
//   npx tsx test/bench/step-cli.ts --model eva --batch 8 --size 224 --steps 2 [--root DIR] [--profile]
//     [--attention fused|unfused]
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const root = resolve(flag('root', join(import.meta.dirname, '..', '..')));
const model = flag('model', 'eva');
const batch = Number(flag('batch', '8')),
  size = Number(flag('size', model === 'eva' ? '224' : '352'));
const steps = Number(flag('steps', '2')),
  warmup = Number(flag('warmup', '1'));
const profile = argv.includes('--profile');
const attention = flag('attention', ''); // fused | unfused: force the attention training path

/** Ops whose kernels only move or combine elements (the "glue" of the speed issue). */
export const GLUE = new RegExp(
  String.raw`^(add|sub|mul|div|neg|maximum|minimum|where|permute|transpose|slice|slice-backward|` +
    String.raw`narrow|expand|clone|cat|flip|full|zeros|ones|fill|reshape|strided|.*-backward-zero)$`,
);

const imp = (p: string) => import(pathToFileURL(join(root, p)).href);
const rt = await imp('runtime-node/index.ts');
const E = await imp('engine/index.ts');
const { SGD, AdamW } = await imp('engine/optim/index.ts');
const dev = await rt.initNode();
if (attention) E.setAttentionTraining(attention);

let step: () => Promise<void>;
let cleanup: () => void;
if (model === 'eva') {
  const { Eva02, eva02Config } = await imp('models/eva02.ts');
  const m = new Eva02(eva02Config('ti', { numClasses: 10, imgSize: size, refFeatShape: [16, 16] }));
  m.flattenParameters();
  const opt = new SGD(m.parameters(), { lr: 1e-3 });
  const x = E.randn([batch, 3, size, size]).keep();
  const y = E.tensor(
    Array.from({ length: batch }, (_, i) => i % 10),
    [batch],
    'i32',
  ).keep();
  step = async () => {
    const l = E.tidy(() => {
      const loss = E.crossEntropy(m.forward(x), y);
      E.backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    await l.item();
    l.dispose();
  };
  cleanup = () => {
    opt.dispose();
    m.dispose();
    x.dispose();
    y.dispose();
  };
} else if (model === 'pvt') {
  const { polypPvt, polypPvtLoss } = await imp('models/polyp-pvt.ts');
  const m = polypPvt('b2');
  m.flattenParameters();
  const opt = new AdamW(m.parameters(), { lr: 1e-4, weightDecay: 1e-4 });
  const x = E.randn([batch, 3, size, size]).keep();
  const t = E.cast(E.gt(E.rand([batch, 1, size, size]), 0.7), 'f32').keep();
  step = async () => {
    const l = E.tidy(() => {
      const loss = polypPvtLoss(m.forward(x), t);
      E.backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    await l.item();
    l.dispose();
  };
  cleanup = () => {
    opt.dispose();
    m.dispose();
    x.dispose();
    t.dispose();
  };
} else {
  throw new Error(`--model must be eva or pvt, got ${model}`);
}

for (let i = 0; i < warmup; i++) await step();
// CPU time of the whole process per step (the driver's worker threads included): on a CPU driver
// that is the work a step costs, which a loaded machine distorts far less than wall time.
const ms: number[] = [],
  cpuMs: number[] = [];
for (let i = 0; i < steps; i++) {
  const t0 = performance.now(),
    c0 = process.cpuUsage();
  await step();
  const c = process.cpuUsage(c0);
  ms.push(performance.now() - t0);
  cpuMs.push((c.user + c.system) / 1000);
}
let kernels: { op: string; n: number; ms: number }[] | undefined;
if (profile && dev.hasTimestamps) {
  dev.debug = 1;
  await step();
  await dev.sync();
  await new Promise((r) => setTimeout(r, 500)); // timestamp readbacks resolve asynchronously
  dev.debug = 0;
  kernels = dev
    .timingReport()
    .split('\n')
    .filter(Boolean)
    .map((line: string) => {
      const m = /^(\S+)\s+(\d+) x\s+[\d.]+ us = ([\d.]+) ms$/.exec(line.trim());
      return m ? { op: m[1], n: Number(m[2]), ms: Number(m[3]) } : { op: line, n: 0, ms: 0 };
    });
}
cleanup();
const sorted = [...ms].sort((a, b) => a - b);
const median =
  sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
const out: Record<string, unknown> = {
  root,
  model,
  batch,
  size,
  msPerStep: median,
  stepsMs: ms,
  cpuMsPerStep: [...cpuMs].sort((a, b) => a - b)[cpuMs.length >> 1],
  adapter: dev.adapterName,
};
if (kernels) {
  const total = kernels.reduce((s, k) => s + k.ms, 0);
  const glue = kernels.filter((k) => GLUE.test(k.op)).reduce((s, k) => s + k.ms, 0);
  Object.assign(out, { kernelMs: total, glueMs: glue, glueShare: glue / total, kernels });
}
console.log(JSON.stringify(out));
await rt.shutdown();
