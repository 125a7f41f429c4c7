// Activation checkpointing: gradients equal the stored-activation ones bit for bit on the same
// device (dropout / drop-path masks replayed from the saved generator states), the peak of live
// buffer bytes over a training step falls, and a closure over an outer graph is refused.
import { describe, it, expect } from 'vitest';
import {
  Tensor,
  tidy,
  backward,
  device,
  tensor,
  randn,
  requiresGrad,
  manualSeed,
  Generator,
  crossEntropy,
  mul,
  add,
  sum,
  gelu,
  matmul,
  dropout,
  autocast,
} from '../../engine/index.ts';
import { checkpoint, type Module } from '../../engine/nn/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { PVT_V2, PyramidVisionTransformerV2 } from '../../models/pvtv2.ts';

/** Runs one loss + backward inside a tidy; returns every parameter's grad and the step's peak bytes. */
async function gradsOf(model: Module, loss: () => Tensor): Promise<{ grads: Float32Array[]; peak: number }> {
  model.zeroGrad();
  device().resetPeak();
  tidy(() => backward(loss()));
  const peak = device().stats().peakLiveBytes;
  const grads: Float32Array[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.grad) throw new Error(`${name} has no grad`);
    grads.push((await p.grad.data()) as Float32Array);
  }
  model.zeroGrad();
  return { grads, peak };
}

function expectSameBits(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((g, i) => expect(Array.from(b[i]), `parameter ${i}`).toEqual(Array.from(g)));
}

describe('checkpoint', () => {
  it('gives the same input and closure-parameter gradients, dropout included', async () => {
    const w = requiresGrad(randn([8, 8]).keep());
    const x = requiresGrad(randn([4, 8]).keep());
    const fn = (z: Tensor) => dropout(gelu(matmul(z, w)), 0.3, true);
    const run = async (ckpt: boolean) => {
      manualSeed(7);
      tidy(() => backward(sum(mul(ckpt ? checkpoint(fn, [x]) : fn(x), x))));
      const out = [await x.grad!.data(), await w.grad!.data()];
      for (const t of [x, w]) {
        t.grad!.dispose();
        t.grad = null;
      }
      return out as Float32Array[];
    };
    expectSameBits(await run(false), await run(true));
    for (const t of [x, w]) t.dispose();
  });

  it('replays under the autocast state of the forward', async () => {
    const w = requiresGrad(randn([8, 8]).keep());
    const x = requiresGrad(randn([4, 8]).keep());
    const fn = (z: Tensor) => gelu(matmul(gelu(matmul(z, w)), w));
    const run = async (ckpt: boolean) => {
      tidy(() =>
        backward(
          sum(
            mul(
              autocast(() => (ckpt ? checkpoint(fn, [x]) : fn(x))),
              x,
            ),
          ),
        ),
      );
      const out = [await x.grad!.data(), await w.grad!.data()];
      for (const t of [x, w]) {
        t.grad!.dispose();
        t.grad = null;
      }
      return out as Float32Array[];
    };
    expectSameBits(await run(false), await run(true));
    for (const t of [x, w]) t.dispose();
  });

  it('refuses a closure over a tensor that carries an outer graph', () => {
    const x = requiresGrad(randn([3]).keep());
    tidy(() => {
      const outer = mul(x, 2);
      const y = checkpoint((z) => add(z, outer), [x]);
      expect(() => backward(sum(y))).toThrow(/outside it that carries a graph/);
    });
    x.dispose();
  });

  it('µ EVA-02 with checkpointed blocks: identical grads with dropout and drop path, lower peak', async () => {
    const cfg = eva02Config('mu', { imgSize: 32, depth: 3, projDropRate: 0.1, dropPathRate: 0.2 });
    const model = new Eva02(cfg, { generator: new Generator(3) });
    const x = randn([2, 3, 32, 32]).keep();
    const y = tensor([1, 7], [2], 'i32').keep();
    const step = (ckpt: boolean) => {
      model.cfg.checkpointBlocks = ckpt;
      const g = new Generator(11);
      // The model's own generator draws the masks; reseed it the same way for both runs.
      for (const blk of model.blocks) blk.generator.setState(g.getState());
      return gradsOf(model, () => crossEntropy(model.forward(x), y));
    };
    const plain = await step(false);
    const ckpt = await step(true);
    expectSameBits(plain.grads, ckpt.grads);
    expect(ckpt.peak).toBeLessThan(plain.peak);
    console.log(`µ EVA-02 (3 blocks, 32²): peak live ${plain.peak} B stored, ${ckpt.peak} B checkpointed`);
    for (const t of [x, y]) t.dispose();
  });

  it('PVTv2-µ with checkpointed blocks: identical grads with drop path, lower peak', async () => {
    const model = new PyramidVisionTransformerV2({ ...PVT_V2.mu, depths: [2, 1, 1, 1], dropPathRate: 0.3 });
    const x = randn([2, 3, 64, 64]).keep();
    const targets = [16, 32, 64, 128].map((c, i) => randn([2, c, 16 >> i, 16 >> i]).keep());
    const step = (ckpt: boolean) => {
      model.config.checkpointBlocks = ckpt;
      manualSeed(5);
      return gradsOf(model, () => {
        const f = model.forward(x);
        // A random projection of every stage: each block's gradient is well above rounding noise.
        return f.reduce((acc: Tensor, t, i) => add(acc, sum(mul(t, targets[i]))), sum(mul(f[0], 0)));
      });
    };
    const plain = await step(false);
    const ckpt = await step(true);
    expectSameBits(plain.grads, ckpt.grads);
    expect(ckpt.peak).toBeLessThan(plain.peak);
    console.log(`PVTv2-µ (64²): peak live ${plain.peak} B stored, ${ckpt.peak} B checkpointed`);
    for (const t of [x, ...targets]) t.dispose();
  });
});
