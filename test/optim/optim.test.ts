// Optimizers against PyTorch trajectories (test/golden/gen_optim.py), schedules against
// torch.optim.lr_scheduler, parameter-group helpers, clipping, EMA, and the fused step's
// dispatch count.
import { describe, it, expect } from 'vitest';
import { Tensor, tensor, device, tidy, add, sum, mul, backward, requiresGrad } from '../../engine/index.ts';
import { packFlat, flatHomeOf, copy_ } from '../../engine/flat.ts';
import { Linear, Sequential } from '../../engine/nn/layers.ts';
import {
  SGD,
  Adam,
  AdamW,
  AdaBelief,
  Optimizer,
  clipGradNorm,
  clipGradValue,
  ModelEma,
  cosineLr,
  polyWarmupFactor,
  stepFactor,
  lambdaFactor,
  layerDecayGroups,
  paramGroupsWeightDecay,
  vitLayerId,
  type OptimizerOptions,
} from '../../engine/optim/index.ts';
import { loadGolden, fromEncoded, expectClose, randomArray, type Encoded } from '../helpers.ts';

interface OptimCase {
  name: string;
  options: Record<string, unknown>;
  groups: { params: number[]; lr: number; weight_decay: number }[];
  start: Encoded[];
  grads: (Encoded | null)[][];
  final: Encoded[];
}

const all = loadGolden('optim') as unknown as (OptimCase & Record<string, any>)[];
const cases = all.filter((c) => c.name !== 'schedules') as OptimCase[];
const schedules = all.find((c) => c.name === 'schedules')!;

type Make = (
  groups: { params: Tensor[]; lr: number; weightDecay: number }[],
  o: Record<string, any>,
) => Optimizer<OptimizerOptions>;
const MAKE: Record<string, Make> = {
  sgd: (g) => new SGD(g, { lr: 0.1 }),
  sgd_momentum: (g, o) => new SGD(g, { lr: 0.1, momentum: o.momentum, dampening: o.dampening }),
  sgd_nesterov: (g, o) => new SGD(g, { lr: 0.1, momentum: o.momentum, nesterov: o.nesterov }),
  adam: (g, o) => new Adam(g, { betas: o.betas, eps: o.eps }),
  adamw: (g, o) => new AdamW(g, { betas: o.betas, eps: o.eps }),
  adabelief: (g, o) => new AdaBelief(g, o),
  adabelief_fixed_decay: (g, o) => new AdaBelief(g, o),
  adabelief_l2: (g, o) => new AdaBelief(g, o),
};

function setGrad(p: Tensor, g: Tensor | null): void {
  p.grad?.dispose();
  p.grad = g ? g.keep() : null;
}

/** Runs a golden case with parameters either in their own buffers or pre-flattened windows. */
async function runCase(c: OptimCase, flat: boolean, maxSlab?: number): Promise<void> {
  const base = device().liveBuffers;
  let params = c.start.map((e) => requiresGrad(fromEncoded(e)).keep());
  let slabs: Tensor[] = [];
  if (flat) {
    const pack = packFlat(params, 'test', true, maxSlab);
    if (maxSlab) expect(pack.slabs.length).toBe(3);
    for (const p of params) p.dispose();
    params = pack.windows.map((w) => requiresGrad(w).keep());
    slabs = pack.slabs;
    expect(params.every((p) => flatHomeOf(p))).toBe(true);
  }
  const groups = c.groups.map((g) => ({
    params: g.params.map((i) => params[i]),
    lr: g.lr,
    weightDecay: g.weight_decay,
  }));
  const opt = MAKE[c.name](groups, c.options);
  for (const step of c.grads) {
    tidy(() => {
      params.forEach((p, i) => setGrad(p, step[i] ? fromEncoded(step[i]!) : null));
      opt.step();
    });
  }
  for (let i = 0; i < params.length; i++) {
    expectClose(
      await params[i].data(),
      c.final[i].data,
      `${c.name}${flat ? ' (flat)' : ''}: parameter ${i}`,
      1e-5,
      1e-5,
    );
  }
  opt.zeroGrad();
  opt.dispose();
  for (const p of [...params, ...slabs]) p.dispose();
  expect(device().liveBuffers, 'optimizer and parameters freed').toBe(base);
}

describe('optimizers against PyTorch (two groups, five steps, a skipped gradient)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      await runCase(c, false);
    });
    it(`${c.name} on flattened parameters`, async () => {
      await runCase(c, true);
    });
    it(`${c.name} on parameters spread over three flat buffers`, async () => {
      await runCase(c, true, 128);
    });
  }
});

describe('fused step', () => {
  it('updates every parameter of every group in one dispatch per flat buffer, with one copy per gradient', async () => {
    const model = new Sequential(new Linear(5, 33), new Linear(33, 7), new Linear(7, 1)).flattenParameters();
    const groups = paramGroupsWeightDecay(model.namedParameters(), 0.05);
    expect(groups.length).toBe(2);
    const opt = new AdamW(groups, { lr: 1e-2 });
    const dev = device();
    const dispatch = dev.dispatch.bind(dev);
    const copy = dev.copy.bind(dev);
    let dispatches = 0,
      copies = 0;
    dev.dispatch = (d) => {
      dispatches++;
      dispatch(d);
    };
    dev.copy = (...a) => {
      copies++;
      copy(...a);
    };
    try {
      for (const p of model.parameters()) setGrad(p, tensor(randomArray(p.size, p.size), p.shape));
      const before = await model.parameters()[0].data();
      dispatches = 0;
      copies = 0;
      opt.step();
      expect(dispatches).toBe(1);
      expect(copies).toBe(model.parameters().length);
      const after = await model.parameters()[0].data();
      expect(Array.from(after)).not.toEqual(Array.from(before));
    } finally {
      dev.dispatch = dispatch;
      dev.copy = copy;
      opt.dispose();
      model.dispose();
    }
  });

  it('honours setLr / scaleLr between steps and lrScale per group', async () => {
    const a = requiresGrad(tensor([1, 2, 3], [3])).keep();
    const b = requiresGrad(tensor([1, 2, 3], [3])).keep();
    const opt = new SGD([{ params: [a] }, { params: [b], lrScale: 0.5 }], { lr: 1 });
    setGrad(a, tensor([1, 1, 1], [3]));
    setGrad(b, tensor([1, 1, 1], [3]));
    opt.setLr(0.1);
    opt.step(); // a -= 0.1, b -= 0.05
    opt.scaleLr(2); // lr = initialLr (1) * 2
    opt.step(); // a -= 2, b -= 1
    expectClose(await a.data(), [-1.1, -0.1, 0.9], 'a');
    expectClose(await b.data(), [-0.05, 0.95, 1.95], 'b');
    opt.zeroGrad();
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('stateDict / loadStateDict continue a run exactly', async () => {
    const c = cases.find((x) => x.name === 'adabelief')!;
    const make = (ps: Tensor[]) =>
      MAKE.adabelief(
        c.groups.map((g) => ({ params: g.params.map((i) => ps[i]), lr: g.lr, weightDecay: g.weight_decay })),
        c.options,
      );
    const ps = c.start.map((e) => requiresGrad(fromEncoded(e)).keep());
    let opt = make(ps);
    c.grads.forEach((step, k) => {
      if (k === 3) {
        // Checkpoint and resume into a fresh optimizer.
        const sd = opt.stateDict();
        const next = make(ps);
        next.loadStateDict(sd);
        for (const t of sd.state.values()) t.dispose();
        opt.dispose();
        opt = next;
      }
      tidy(() => {
        ps.forEach((p, i) => setGrad(p, step[i] ? fromEncoded(step[i]!) : null));
        opt.step();
      });
    });
    for (let i = 0; i < ps.length; i++)
      expectClose(await ps[i].data(), c.final[i].data, `resumed parameter ${i}`, 1e-5, 1e-5);
    opt.zeroGrad();
    opt.dispose();
    for (const p of ps) p.dispose();
  });

  it('rejects bad settings', () => {
    const p = requiresGrad(tensor([1], [1])).keep();
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new Adam([p], { betas: [1, 0.9] })).toThrow(/beta parameter at index 0/);
    expect(() => new AdaBelief([p], { rectify: true as unknown as false })).toThrow(/rectify/);
    expect(() => new Adam([{ params: [p] }, { params: [p] }])).toThrow(/more than one parameter group/);
    p.dispose();
  });
});

describe('schedules against torch.optim.lr_scheduler', () => {
  it('cosine with linear warm-up', () => {
    const s = schedules.cosine;
    expectClose(
      s.lr.map((_: number, t: number) => cosineLr(t, s.options)),
      s.lr,
      'cosine',
      1e-12,
      1e-9,
    );
  });
  it('poly with warm-up (ToCo)', () => {
    const s = schedules.poly;
    expectClose(
      s.factor.map((_: number, t: number) => polyWarmupFactor(t, s.options)),
      s.factor,
      'poly',
      1e-12,
      1e-9,
    );
  });
  it('step and lambda', () => {
    expectClose(
      schedules.step.factor.map((_: number, t: number) => stepFactor(t, schedules.step.options)),
      schedules.step.factor,
      'step',
      1e-12,
      1e-9,
    );
    expectClose(
      schedules.lambda.factor.map((_: number, t: number) => lambdaFactor(t, (e) => 0.95 ** (e / 2))),
      schedules.lambda.factor,
      'lambda',
      1e-12,
      1e-9,
    );
  });
});

describe('parameter groups', () => {
  const t = (shape: number[]) => requiresGrad(tensor(new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape));
  const makeNamed = (): [string, Tensor][] => [
    ['cls_token', t([1, 1, 4])],
    ['pos_embed', t([1, 5, 4])],
    ['patch_embed.proj.weight', t([4, 3, 2, 2])],
    ['patch_embed.proj.bias', t([4])],
    ['blocks.0.norm1.weight', t([4])],
    ['blocks.0.attn.qkv.weight', t([12, 4])],
    ['blocks.1.mlp.fc1.weight', t([8, 4])],
    ['blocks.1.mlp.fc1.bias', t([8])],
    ['norm.weight', t([4])],
    ['head.weight', t([3, 4])],
    ['head.bias', t([3])],
  ];

  it('layer-wise lr decay follows BEiT: scale = decay^(L + 1 - layer_id), decay split as timm', () => {
    const named = makeNamed();
    const id = vitLayerId(2);
    expect(named.map(([n]) => id(n))).toEqual([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3]);
    const groups = layerDecayGroups(named, 2, 0.5, id, {
      weightDecay: 0.05,
      noWeightDecayList: ['pos_embed', 'cls_token'],
    });
    const summary = groups.map((g) => [
      g.name,
      g.lrScale,
      g.weightDecay,
      g.params.map((p) => named.find((e) => e[1] === p)![0]),
    ]);
    expect(summary).toEqual([
      ['layer_0_no_decay', 0.125, 0, ['cls_token', 'pos_embed', 'patch_embed.proj.bias']],
      ['layer_0_decay', 0.125, 0.05, ['patch_embed.proj.weight']],
      ['layer_1_no_decay', 0.25, 0, ['blocks.0.norm1.weight']],
      ['layer_1_decay', 0.25, 0.05, ['blocks.0.attn.qkv.weight']],
      ['layer_2_decay', 0.5, 0.05, ['blocks.1.mlp.fc1.weight']],
      ['layer_2_no_decay', 0.5, 0, ['blocks.1.mlp.fc1.bias']],
      ['layer_3_no_decay', 1, 0, ['norm.weight', 'head.bias']],
      ['layer_3_decay', 1, 0.05, ['head.weight']],
    ]);
    for (const [, p] of named) p.dispose();
  });

  it('weight-decay exclusion: 1-d parameters and biases get none; frozen parameters are left out', () => {
    const named = makeNamed();
    named[9][1].requiresGrad = false; // head.weight frozen
    const [noDecay, decay] = paramGroupsWeightDecay(named, 0.1);
    const names = (ps: readonly Tensor[]) => ps.map((p) => named.find((e) => e[1] === p)![0]);
    expect(noDecay.weightDecay).toBe(0);
    expect(names(noDecay.params)).toEqual([
      'patch_embed.proj.bias',
      'blocks.0.norm1.weight',
      'blocks.1.mlp.fc1.bias',
      'norm.weight',
      'head.bias',
    ]);
    expect(decay.weightDecay).toBe(0.1);
    expect(names(decay.params)).toEqual([
      'cls_token',
      'pos_embed',
      'patch_embed.proj.weight',
      'blocks.0.attn.qkv.weight',
      'blocks.1.mlp.fc1.weight',
    ]);
    for (const [, p] of named) p.dispose();
  });
});

describe('gradient clipping', () => {
  const G = [randomArray(35, 1, -2, 2), randomArray(7, 2, -2, 2), randomArray(99, 3, -2, 2)];
  const SHAPES = [[7, 5], [7], [3, 33]];
  const make = () =>
    G.map((g, i) => {
      const p = requiresGrad(tensor(new Array(g.length).fill(0), SHAPES[i])).keep();
      p.grad = tensor(g, SHAPES[i]).keep();
      return p;
    });
  const flat = G.flat();

  for (const [normType, ref] of [
    [2, Math.hypot(...flat)],
    [1, flat.reduce((a, v) => a + Math.abs(v), 0)],
    [Infinity, Math.max(...flat.map(Math.abs))],
    [3, flat.reduce((a, v) => a + Math.abs(v) ** 3, 0) ** (1 / 3)],
  ] as const) {
    it(`clipGradNorm, norm ${normType}: returns the total norm and scales by maxNorm / (norm + 1e-6)`, async () => {
      const base = device().liveBuffers;
      const ps = make();
      const maxNorm = ref / 4;
      const total = clipGradNorm(ps, maxNorm, normType);
      expectClose([await total.item()], [ref], 'total norm', 1e-4, 1e-5);
      const coef = maxNorm / (ref + 1e-6);
      for (let i = 0; i < ps.length; i++)
        expectClose(
          await ps[i].grad!.data(),
          G[i].map((v) => v * coef),
          `clipped grad ${i}`,
          1e-5,
          1e-4,
        );
      total.dispose();
      for (const p of ps) {
        p.grad!.dispose();
        p.dispose();
      }
      expect(device().liveBuffers).toBe(base);
    });
  }

  it('clipGradNorm leaves gradients under the limit unchanged', async () => {
    const ps = make();
    const total = clipGradNorm(ps, 1e6);
    for (let i = 0; i < ps.length; i++) expectClose(await ps[i].grad!.data(), G[i], `grad ${i}`);
    total.dispose();
    for (const p of ps) {
      p.grad!.dispose();
      p.dispose();
    }
  });

  it('scales a gradient shared by two leaves once per leaf (regression: no in-place scaling)', async () => {
    const a = requiresGrad(tensor([3, 4], [2])).keep();
    const b = requiresGrad(tensor([0, 0], [2])).keep();
    tidy(() => backward(sum(mul(add(a, b), tensor([3, 4], [2])))));
    // a.grad and b.grad may share one storage; each must come out as [3, 4] * 0.5 / (sqrt(50)+eps)-ish.
    const total = clipGradNorm([a, b], 1);
    const n = await total.item();
    expectClose([n], [Math.sqrt(50)], 'norm');
    const coef = 1 / (Math.sqrt(50) + 1e-6);
    expectClose(await a.grad!.data(), [3 * coef, 4 * coef], 'a.grad');
    expectClose(await b.grad!.data(), [3 * coef, 4 * coef], 'b.grad');
    total.dispose();
    for (const p of [a, b]) {
      p.grad!.dispose();
      p.dispose();
    }
  });

  it('clipGradValue clamps every element', async () => {
    const ps = make();
    clipGradValue(ps, 0.5);
    for (let i = 0; i < ps.length; i++)
      expectClose(
        await ps[i].grad!.data(),
        G[i].map((v) => Math.min(0.5, Math.max(-0.5, v))),
        `grad ${i}`,
      );
    for (const p of ps) {
      p.grad!.dispose();
      p.dispose();
    }
  });
});

describe('ModelEma', () => {
  it('averages every float entry: ema = d ema + (1 - d) w, after each update', async () => {
    const model = new Sequential(new Linear(3, 5), new Linear(5, 2));
    const w0 = await Promise.all(model.parameters().map(async (p) => Array.from(await p.data())));
    const ema = new ModelEma(model, { decay: 0.9 });
    const expected = w0.map((w) => [...w]);
    for (let k = 1; k <= 3; k++) {
      // Move the model: w <- w + k.
      for (const p of model.parameters()) {
        const next = tidy(() => add(p, k));
        copy_(p, next);
        next.dispose();
      }
      ema.update(model);
      w0.forEach((w, i) =>
        w.forEach((v, j) => {
          w0[i][j] = v + k;
          expected[i][j] = 0.9 * expected[i][j] + 0.1 * w0[i][j];
        }),
      );
    }
    const sd = ema.stateDict();
    expect([...sd.keys()]).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    let i = 0;
    for (const t of sd.values()) expectClose(await t.data(), expected[i++], 'ema', 1e-5, 1e-5);
    const copy = new Sequential(new Linear(3, 5), new Linear(5, 2));
    ema.copyTo(copy);
    expectClose(await copy.parameters()[2].data(), expected[2], 'copied ema');
    ema.dispose();
    model.dispose();
    copy.dispose();
  });
});
