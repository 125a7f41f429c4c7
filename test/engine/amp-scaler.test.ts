// Dynamic loss scaling: with a power-of-two scale and f32 gradients, scaled steps equal unscaled
// ones bit for bit; an injected inf gradient skips exactly that step (weights untouched) and halves
// the scale; growthInterval clean steps in a row double it.
import { describe, it, expect } from 'vitest';
import { tensor, tidy, backward, sum, mul, randn, Generator, type Tensor } from '../../engine/index.ts';
import { Linear } from '../../engine/nn/index.ts';
import { SGD, GradScaler } from '../../engine/optim/index.ts';

async function weights(lin: Linear): Promise<number[]> {
  return [...(await lin.weight.data()), ...(await lin.bias!.data())];
}

const loss = (lin: Linear, x: Tensor) => {
  const y = lin.forward(x);
  return sum(mul(y, y));
};

describe('GradScaler', () => {
  it('takes the same steps as unscaled training (power-of-two scale, f32 grads)', async () => {
    const x = randn([4, 6]).keep();
    const make = () => {
      const lin = new Linear(6, 3, { generator: new Generator(1) });
      return { lin, opt: new SGD(lin.parameters(), { lr: 0.05, momentum: 0.9 }) };
    };
    const a = make(),
      b = make();
    expect(await weights(b.lin)).toEqual(await weights(a.lin));
    const scaler = new GradScaler({ initScale: 2 ** 12, growthInterval: 2 });
    for (let it = 0; it < 4; it++) {
      a.opt.zeroGrad();
      tidy(() => backward(loss(a.lin, x)));
      a.opt.step();
      b.opt.zeroGrad();
      tidy(() => backward(scaler.scale(loss(b.lin, x))));
      expect(await scaler.step(b.opt)).toBe(true);
      scaler.update();
      expect(await weights(b.lin), `iteration ${it}`).toEqual(await weights(a.lin));
    }
    expect(scaler.getScale()).toBe(2 ** 14); // grew twice, every 2 clean steps
    x.dispose();
  });

  it('skips exactly the step with an overflowed gradient and halves the scale', async () => {
    const x = randn([4, 6]).keep();
    const lin = new Linear(6, 3);
    const opt = new SGD(lin.parameters(), { lr: 0.05 });
    const scaler = new GradScaler({ initScale: 2 ** 10, growthInterval: 3 });
    const history: [boolean, number][] = [];
    for (let it = 0; it < 6; it++) {
      opt.zeroGrad();
      tidy(() => backward(scaler.scale(loss(lin, x))));
      if (it === 1) {
        // One element past f16 range, as an overflowed f16 product gives.
        const g = await lin.weight.grad!.data();
        g[4] = Infinity;
        lin.weight.grad!.dispose();
        lin.weight.grad = tensor(g, lin.weight.shape).keep();
      }
      const before = await weights(lin);
      const stepped = await scaler.step(opt);
      scaler.update();
      history.push([stepped, scaler.getScale()]);
      const after = await weights(lin);
      if (stepped) expect(after).not.toEqual(before);
      else expect(after, 'a skipped step leaves the weights alone').toEqual(before);
    }
    expect(history).toEqual([
      [true, 1024],
      [false, 512],
      [true, 512],
      [true, 512],
      [true, 1024],
      [true, 1024],
    ]);
    expect(scaler.skippedSteps).toBe(1);
    opt.zeroGrad();
    x.dispose();
  });

  it('disabled, runs unscale_/step/update every iteration like plain training (amp off)', async () => {
    const x = randn([4, 6]).keep();
    const make = () => {
      const lin = new Linear(6, 3, { generator: new Generator(2) });
      return { lin, opt: new SGD(lin.parameters(), { lr: 0.05 }) };
    };
    const a = make(),
      b = make();
    const scaler = new GradScaler({ enabled: false });
    for (let it = 0; it < 3; it++) {
      a.opt.zeroGrad();
      tidy(() => backward(loss(a.lin, x)));
      a.opt.step();
      b.opt.zeroGrad();
      tidy(() => backward(scaler.scale(loss(b.lin, x))));
      // Unscaling before clipping, every iteration: the per-iteration record must clear in update().
      expect(await scaler.unscale_(b.opt)).toBe(false);
      expect(await scaler.step(b.opt)).toBe(true);
      scaler.update();
      expect(await weights(b.lin), `iteration ${it}`).toEqual(await weights(a.lin));
    }
    expect(scaler.getScale()).toBe(1);
    x.dispose();
  });
});
