// EVA-02-Ti training step (forward, cross-entropy, backward, SGD update) at 224², batch 8: this
// engine vs tfjs's WebGPU backend on the same Dawn adapter (its own process) and PyTorch CPU,
// in one run. The goal: >= 2x faster than tfjs. On a CPU driver a step takes tens of
// seconds: BENCH_VIT_SIZE / BENCH_VIT_BATCH / BENCH_VIT_STEPS shrink it (same setting for all).
import { tensor, tidy, backward, crossEntropy, randn } from '../../engine/index.ts';
import { SGD } from '../../engine/optim/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { timeit, fmtNum, type BenchTable } from './util.ts';
import { runPeer, PEERS, envInt } from './models.ts';
import { join } from 'node:path';

export default async function bench(): Promise<BenchTable> {
  const size = envInt('BENCH_VIT_SIZE', 224),
    batch = envInt('BENCH_VIT_BATCH', 8),
    steps = envInt('BENCH_VIT_STEPS', 2);
  const model = new Eva02(eva02Config('ti', { numClasses: 10, imgSize: size, refFeatShape: [16, 16] }));
  model.flattenParameters();
  const opt = new SGD(model.parameters(), { lr: 1e-3 });
  const x = randn([batch, 3, size, size]).keep();
  const y = tensor(
    Array.from({ length: batch }, (_, i) => i % 10),
    [batch],
    'i32',
  ).keep();
  const step = async () => {
    const l = tidy(() => {
      const loss = crossEntropy(model.forward(x), y);
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    await l.item();
    l.dispose();
  };
  const ours = await timeit(step, { warmup: 1, iters: steps });
  opt.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  const args = ['--batch', String(batch), '--size', String(size), '--steps', String(steps), '--warmup', '1'];
  const tfjs = await runPeer(process.execPath, ['--import', 'tsx', join(PEERS, 'tfjs-vit-cli.ts'), ...args]);
  const torch = await runPeer('/usr/bin/python3', [join(PEERS, 'torch_bench.py'), '--model', 'vit', ...args]);
  const row = (name: string, ms: number, note = '') => [
    name,
    fmtNum(ms / 1000, 2),
    fmtNum((batch * 1000) / ms, 2),
    fmtNum(ms / ours, 2) + 'x',
    note,
  ];
  return {
    title: `EVA-02-Ti train step, ${size}², batch ${batch}`,
    columns: ['engine', 's/step (median)', 'images/s', 'time vs this engine', 'note'],
    rows: [
      row('this engine (WebGPU)', ours),
      row('tfjs 4.22 WebGPU, same Dawn adapter', tfjs.msPerStep, tfjs.error ?? ''),
      row('PyTorch CPU (2 threads)', torch.msPerStep, torch.error ?? ''),
    ],
    notes: [
      `Median of ${steps} timed steps after 1 warm-up each. Goal: tfjs time / ours >= 2; measured ${fmtNum(tfjs.msPerStep / ours, 2)}.`,
    ],
  };
}
