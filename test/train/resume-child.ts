// A small training run that checkpoints after every step and resumes from its checkpoint when
// started again. test/train/resume.test.ts kills it at a random moment (SIGKILL) and checks that
// the resumed run's loss curve equals an uninterrupted one.
// Usage: npx tsx test/train/resume-child.ts <checkpoint.safetensors> <steps>
import { Tensor, tensor, tidy, gelu, backward, manualSeed, defaultGenerator } from '../../engine/index.ts';
import { crossEntropy } from '../../engine/ops/losses.ts';
import { Module } from '../../engine/nn/module.ts';
import { Linear, Dropout } from '../../engine/nn/layers.ts';
import { AdamW, clipGradNorm } from '../../engine/optim/index.ts';
import { Rng } from '../../engine/data/random.ts';
import { RandomSampler, DataOrder } from '../../engine/data/sampler.ts';
import { Loader } from '../../engine/data/loader.ts';
import { trainStateBytes, restoreTrainState } from '../../engine/train/checkpoint.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';

const [ckpt, stepsArg] = process.argv.slice(2);
const steps = Number(stepsArg);
await initNode();

class Net extends Module {
  fc1 = new Linear(4, 32);
  drop = new Dropout(0.2);
  fc2 = new Linear(32, 3);
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.drop.forward(gelu(this.fc1.forward(x))));
  }
}

// Data: 96 seeded points in 3 classes.
const rng = new Rng(1);
const X = Array.from({ length: 96 }, (_, i) => [
  (i % 3) + rng.normal(0, 0.5),
  rng.normal(),
  rng.normal(),
  (i % 3) * 0.5 + rng.normal(0, 0.3),
]);
const Y = Array.from({ length: 96 }, (_, i) => i % 3);

manualSeed(7);
const model = new Net();
model.flattenParameters();
const opt = new AdamW(model.parameters(), { lr: 3e-2, weightDecay: 0.01 });
const order = new DataOrder(new RandomSampler(96), { batchSize: 16, seed: 3 });
let losses: number[] = [];
let step = 0;
const saved = readIfExists(ckpt);
if (saved) {
  const r = restoreTrainState<{ step: number; losses: number[] }>(
    saved,
    { model, optimizer: opt, generator: defaultGenerator },
    ckpt,
  );
  ({ step, losses } = r.extra);
  order.loadStateDict(r.data!);
}
const loader = new Loader({
  order,
  prefetch: 2,
  load: async (i: number) => ({ x: X[i], y: Y[i] }),
  collate: (items: { x: number[]; y: number }[]) => ({
    x: items.flatMap((it) => it.x),
    y: items.map((it) => it.y),
    n: items.length,
  }),
});
for (; step < steps; step++) {
  const { data } = await loader.next();
  const loss = tidy(() => {
    const l = crossEntropy(model.forward(tensor(data.x, [data.n, 4])), tensor(data.y, [data.n], 'i32'));
    backward(l);
    clipGradNorm(model.parameters(), 1.0);
    opt.step();
    opt.zeroGrad();
    return l;
  });
  losses.push(await loss.item());
  loss.dispose();
  writeAtomic(
    ckpt,
    await trainStateBytes({
      model,
      optimizer: opt,
      generator: defaultGenerator,
      data: loader.stateDict(),
      extra: { step: step + 1, losses },
    }),
  );
  process.stdout.write(`step ${step + 1} ${losses[losses.length - 1]}\n`);
}
process.stdout.write(`DONE ${JSON.stringify(losses)}\n`);
await shutdown();
