// `npm run gpu-check`: one prepared run for a borrowed GPU (or, with small sizes, any adapter):
//   1. the adapter: name, features, limits that matter (subgroups and their sizes, shader-f16,
//      chromium-experimental-subgroup-matrix and its configurations where Dawn exposes them);
//   2. every kernel path the engine can select against the PyTorch golden cases (pass/fail);
//   3. timings: matmul n^3 for n in 512..8192 up to --max, a 3x3 conv, attention forward +
//      backward (fused and unfused), and the EVA-02-Ti and Polyp-PVT-b2 training steps;
// writing <out>/gpu-check.json and <out>/gpu-check.md. Every section catches its own errors, so
// a failure is reported in the table and the run goes on. Speed figures are medians after a
// warm-up. On lavapipe: npm run gpu-check -- --max 512 --eva-size 64 --eva-batch 2 --pvt-size 64 --pvt-batch 1
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { create } from 'webgpu';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import {
  randn,
  rand,
  tensor,
  tidy,
  matmul,
  backward,
  sum,
  requiresGrad,
  crossEntropy,
  gt,
  cast,
  chooseMatmulKernel,
  setAttentionTraining,
  attentionTrainingPath,
  scaledDotProductAttention,
} from '../../engine/index.ts';
import { conv2d } from '../../engine/ops/conv.ts';
import { chooseConvKernel } from '../../engine/ops/conv-kernels.ts';
import { SGD, AdamW } from '../../engine/optim/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { polypPvt, polypPvtLoss } from '../../models/polyp-pvt.ts';
import { timeit, fmtNum, trainStep } from './util.ts';
import { kernelChecks, type CheckRow } from './gpu-check-cases.ts';

export const FLAGS = defineFlags(
  'test/bench/gpu-check.ts',
  'Adapter report, kernel checks against PyTorch goldens, and timings, as JSON + Markdown.',
  {
    out: { type: 'string', default: 'out/gpu-check', help: 'folder for gpu-check.json and gpu-check.md' },
    max: {
      type: 'int',
      default: 4096,
      min: 0,
      help: 'largest matmul n (of 512, 1024, ..., 8192) to time; 0 skips matmul timing',
    },
    conv: { type: 'int', default: 56, min: 0, help: 'conv timing: [8, 64, s, s] input, 3x3, 64 channels; 0 skips' },
    attnLen: {
      type: 'int',
      default: 257,
      min: 0,
      help: 'attention timing: batch 8, 3 heads, head dim 64, this many tokens; 0 skips',
    },
    evaSize: { type: 'int', default: 224, min: 0, help: 'EVA-02-Ti train step image size (multiple of 16); 0 skips' },
    evaBatch: { type: 'int', default: 8, min: 1, help: 'EVA-02-Ti train step batch' },
    pvtSize: {
      type: 'int',
      default: 352,
      min: 0,
      help: 'Polyp-PVT-b2 train step image size (multiple of 32); 0 skips',
    },
    pvtBatch: { type: 'int', default: 8, min: 1, help: 'Polyp-PVT-b2 train step batch' },
    steps: { type: 'int', default: 3, min: 1, help: 'timed runs per figure (after one warm-up)' },
    checks: { type: 'boolean', default: true, help: 'run the kernel checks against the golden cases' },
  },
);

export interface Timing {
  what: string;
  ms: number;
  rate: string;
  note: string;
}
export interface Report {
  date: string;
  cpu: string;
  adapter: Record<string, unknown>;
  features: string[];
  limits: Record<string, number>;
  subgroupMatrixConfigs: unknown;
  choices: Record<string, string>;
  checks: CheckRow[];
  timings: Timing[];
}

function adapterReport(adapter: GPUAdapter): Pick<Report, 'adapter' | 'features' | 'limits' | 'subgroupMatrixConfigs'> {
  const info = adapter.info as GPUAdapterInfo & Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const k of [
    'vendor',
    'architecture',
    'device',
    'description',
    'subgroupMinSize',
    'subgroupMaxSize',
    'isFallbackAdapter',
  ])
    fields[k] = info[k];
  const limits: Record<string, number> = {};
  for (const k in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') limits[k] = v;
  }
  // Dawn names these differently across versions; report whatever is there.
  const configs =
    info.subgroupMatrixConfigs ?? (adapter as unknown as Record<string, unknown>).subgroupMatrixConfigs ?? null;
  return { adapter: fields, features: [...adapter.features].sort(), limits, subgroupMatrixConfigs: configs };
}

async function section(
  timings: Timing[],
  what: string,
  fn: () => Promise<Omit<Timing, 'what'>>,
  log: (l: string) => void,
): Promise<void> {
  try {
    const t = { what, ...(await fn()) };
    timings.push(t);
    log(`${what}: ${fmtNum(t.ms, 1)} ms ${t.rate} ${t.note}`);
  } catch (e) {
    timings.push({ what, ms: NaN, rate: '-', note: `error: ${(e as Error).message.slice(0, 200)}` });
    log(`${what}: error ${(e as Error).message}`);
  }
}

async function timings(f: ReturnType<typeof FLAGS.parse> & object, log: (l: string) => void): Promise<Timing[]> {
  const out: Timing[] = [];
  const iters = f.steps;
  for (const n of [512, 1024, 2048, 4096, 8192].filter((s) => s <= f.max)) {
    await section(
      out,
      `matmul ${n}^3 (${chooseMatmulKernel()})`,
      async () => {
        const a = randn([n, n]),
          b = randn([n, n]);
        const ms = await timeit(
          () =>
            tidy(() => {
              matmul(a, b);
            }),
          { warmup: 1, iters },
        );
        a.dispose();
        b.dispose();
        return { ms, rate: `${fmtNum((2 * n ** 3) / (ms * 1e6), 1)} GFLOP/s`, note: '' };
      },
      log,
    );
  }
  if (f.conv > 0) {
    const s = f.conv;
    const geom = {
      n: 8,
      cin: 64,
      h: s,
      w: s,
      cout: 64,
      oh: s,
      ow: s,
      groups: 1,
      kh: 3,
      kw: 3,
      sh: 1,
      sw: 1,
      ph: 1,
      pw: 1,
      dh: 1,
      dw: 1,
    };
    await section(
      out,
      `conv2d [8, 64, ${s}, ${s}] 3x3 -> 64 (${chooseConvKernel(geom)}), forward + backward`,
      async () => {
        const x = requiresGrad(randn([8, 64, s, s])),
          w = requiresGrad(randn([64, 64, 3, 3])),
          b = requiresGrad(randn([64]));
        const ms = await timeit(
          () => {
            tidy(() => backward(sum(conv2d(x, w, b, { padding: 1 }))));
            for (const t of [x, w, b]) {
              t.grad?.dispose();
              t.grad = null;
            }
          },
          { warmup: 1, iters },
        );
        for (const t of [x, w, b]) t.dispose();
        return {
          ms,
          rate: `${fmtNum((3 * 2 * 8 * 64 * 64 * 9 * s * s) / (ms * 1e6), 1)} GFLOP/s`,
          note: '3x the forward FLOPs',
        };
      },
      log,
    );
  }
  if (f.attnLen > 0) {
    const n = f.attnLen;
    for (const mode of ['fused', 'unfused'] as const) {
      const chosen = attentionTrainingPath(8, 3, n, n) === mode ? ' (auto picks this)' : '';
      await section(
        out,
        `attention B8 H3 N${n} d64 forward + backward, ${mode}${chosen}`,
        async () => {
          setAttentionTraining(mode);
          const [q, k, v] = [1, 2, 3].map(() => requiresGrad(randn([8, 3, n, 64])));
          const ms = await timeit(
            () => {
              tidy(() => backward(sum(scaledDotProductAttention(q, k, v))));
              for (const t of [q, k, v]) {
                t.grad?.dispose();
                t.grad = null;
              }
            },
            { warmup: 1, iters },
          );
          setAttentionTraining('auto');
          for (const t of [q, k, v]) t.dispose();
          return {
            ms,
            rate: `${fmtNum((3.5 * 4 * 8 * 3 * n * n * 64) / (ms * 1e6), 1)} GFLOP/s`,
            note: 'FLOPs counted as 3.5x the forward',
          };
        },
        log,
      );
    }
  }
  if (f.evaSize > 0) {
    const [s, bt] = [f.evaSize, f.evaBatch];
    await section(
      out,
      `EVA-02-Ti train step ${s}², batch ${bt} (SGD)`,
      async () => {
        const m = new Eva02(eva02Config('ti', { numClasses: 10, imgSize: s, refFeatShape: [16, 16] }));
        m.flattenParameters();
        const opt = new SGD(m.parameters(), { lr: 1e-3 });
        const x = randn([bt, 3, s, s]).keep(),
          y = tensor(
            Array.from({ length: bt }, (_, i) => i % 10),
            [bt],
            'i32',
          ).keep();
        let loss = NaN;
        const ms = await timeit(
          async () => {
            loss = await trainStep(opt, () => crossEntropy(m.forward(x), y));
          },
          { warmup: 1, iters },
        );
        opt.dispose();
        m.dispose();
        x.dispose();
        y.dispose();
        if (!Number.isFinite(loss)) throw new Error(`non-finite loss ${loss}`);
        return { ms, rate: `${fmtNum((bt * 1000) / ms, 2)} images/s`, note: `loss ${fmtNum(loss, 3)}` };
      },
      log,
    );
  }
  if (f.pvtSize > 0) {
    const [s, bt] = [f.pvtSize, f.pvtBatch];
    await section(
      out,
      `Polyp-PVT-b2 train step ${s}², batch ${bt} (AdamW)`,
      async () => {
        const m = polypPvt('b2');
        m.flattenParameters();
        const opt = new AdamW(m.parameters(), { lr: 1e-4, weightDecay: 1e-4 });
        const x = randn([bt, 3, s, s]).keep(),
          t = cast(gt(rand([bt, 1, s, s]), 0.7), 'f32').keep();
        let loss = NaN;
        const ms = await timeit(
          async () => {
            loss = await trainStep(opt, () => polypPvtLoss(m.forward(x), t));
          },
          { warmup: 1, iters },
        );
        opt.dispose();
        m.dispose();
        x.dispose();
        t.dispose();
        if (!Number.isFinite(loss)) throw new Error(`non-finite loss ${loss}`);
        return { ms, rate: `${fmtNum((bt * 1000) / ms, 2)} images/s`, note: `loss ${fmtNum(loss, 3)}` };
      },
      log,
    );
  }
  return out;
}

/** The adapter limits the table shows: the ones that bound buffer and dispatch sizes. */
const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
];

export function markdown(r: Report): string {
  const a = r.adapter;
  const lines = [
    `# gpu-check, ${r.date}`,
    '',
    `Adapter: ${a.vendor} ${a.architecture} ${a.description || a.device}; CPU: ${r.cpu}`,
    '',
    `Features: ${r.features.join(', ')}`,
    '',
    `Subgroup sizes: ${a.subgroupMinSize ?? '-'}..${a.subgroupMaxSize ?? '-'}; subgroup-matrix ` +
      `configs: ${r.subgroupMatrixConfigs ? JSON.stringify(r.subgroupMatrixConfigs) : 'not exposed'}`,
    '',
    `Limits: ${LIMITS.map((k) => `${k} ${r.limits[k]}`).join(', ')}`,
    '',
    `Kernel choices: ${Object.entries(r.choices)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    '## Kernel checks against PyTorch goldens',
    '',
    '| path | cases | pass | failures (worst error / tolerance) |',
    '|---|---|---|---|',
  ];
  const paths = [...new Set(r.checks.map((c) => c.path))];
  for (const p of paths) {
    const cs = r.checks.filter((c) => c.path === p);
    const bad = cs
      .filter((c) => !c.ok)
      .map((c) => `${c.case} (${Number.isFinite(c.worst) ? fmtNum(c.worst, 1) : c.note})`);
    lines.push(`| ${p} | ${cs.length} | ${cs.length - bad.length} | ${bad.join('; ') || '-'} |`);
  }
  lines.push('', '## Timings', '', '| what | median ms | rate | note |', '|---|---|---|---|');
  for (const t of r.timings) lines.push(`| ${t.what} | ${fmtNum(t.ms, 1)} | ${t.rate} | ${t.note} |`);
  return lines.join('\n') + '\n';
}

let instance: GPU | null = null;

export async function main(argv: string[]): Promise<Report | undefined> {
  const f = FLAGS.parse(argv);
  if (!f) return undefined;
  const log = (l: string) => process.stderr.write(l + '\n');
  const dev = await initNode();
  // The engine's runtime keeps its adapter to itself: ask Dawn again for the same adapter to list
  // all of its features (the device only has those the engine requested). `instance` outlives it.
  // allow_unsafe_apis lets Dawn list experimental features (chromium-experimental-subgroup-matrix).
  instance ??= create(['enable-dawn-features=allow_unsafe_apis']);
  const adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('gpu-check: the second adapter request found no adapter');
  log(`adapter: ${dev.adapterName}${dev.isCpuAdapter ? ' (CPU driver)' : ''}`);
  const report: Report = {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    ...adapterReport(adapter),
    choices: {
      matmul: chooseMatmulKernel(),
      'attention training (B8 H3 N257)': attentionTrainingPath(8, 3, 257, 257),
      'shader-f16 on the device': String(dev.hasF16),
    },
    checks: [],
    timings: [],
  };
  if (f.checks) report.checks = await kernelChecks(log);
  report.timings = await timings(f, log);
  mkdirSync(f.out, { recursive: true });
  writeFileSync(join(f.out, 'gpu-check.json'), JSON.stringify(report, null, 2));
  const md = markdown(report);
  writeFileSync(join(f.out, 'gpu-check.md'), md);
  process.stdout.write(md);
  await shutdown();
  return report;
}

if (isMain(import.meta.url)) runMain(main);
