// Vision and transformer nn modules (engine/nn/vision.ts, attention.ts, mlp.ts) against the real
// torch.nn modules (test/golden/gen_nn_vision.py): state_dict keys, shapes and dtypes; loading
// PyTorch's weights gives PyTorch's output and the gradients of every input and parameter;
// BatchNorm's running statistics after a train step and its eval output after it; default
// initialisation against PyTorch's (bounds and spread); DropPath; masks; finite differences.
import { readFixture } from '../golden/read-fixture.ts';
import { describe, it, expect } from 'vitest';
import {
  Tensor,
  tensor,
  tidy,
  noGrad,
  backward,
  requiresGrad,
  device,
  sum,
  mul,
  ones,
  Generator,
} from '../../engine/index.ts';
import { Module } from '../../engine/nn/module.ts';
import { LayerNorm, type Layer } from '../../engine/nn/layers.ts';
import * as nn from '../../engine/nn/index.ts';
import {
  Conv2d,
  Conv1d,
  ConvTranspose2d,
  BatchNorm1d,
  BatchNorm2d,
  GroupNorm,
  LayerNorm2d,
} from '../../engine/nn/vision.ts';
import { MultiheadAttention, MASKED_SCORE } from '../../engine/nn/attention.ts';
import { Mlp, DropPath, GELU, ReLU } from '../../engine/nn/mlp.ts';
import { expectClose, checkFiniteDifferences, randomArray } from '../helpers.ts';

interface Exact {
  shape: number[];
  dtype: 'f32' | 'i32';
  scale: number;
  q: number[];
}
interface Approx {
  shape: number[];
  dtype: 'f32' | 'i32';
  data: number[];
}
type Enc = Exact | Approx;
interface Ctor {
  type: string;
  args: (number | number[])[];
  opts: Record<string, unknown>;
}
interface ModuleCase {
  name: string;
  ctor: Ctor;
  train: boolean;
  forward_args: { output_size?: number[] };
  keys: [string, number[], 'f32' | 'i32'][];
  state: Record<string, Exact>;
  inputs: (Exact | null)[];
  output: Approx;
  cotangent: Exact;
  input_grads: (Approx | null)[];
  param_grads: Record<string, Approx>;
  buffers_after: Record<string, Enc>;
  eval_output?: Approx;
}
interface InitStats {
  shape: number[];
  min: number;
  max: number;
  mean: number;
  std: number;
  bound?: number;
}
interface InitCase {
  name: string;
  ctor: Ctor;
  entries: Record<string, InitStats>;
}

const fx = readFixture<{ cases: { modules: ModuleCase[]; init: InitCase[] } }>('nn_vision').cases;

const values = (e: Enc) => ('q' in e ? e.q.map((v) => v * e.scale) : e.data);
const decode = (e: Enc) => tensor(values(e), e.shape, e.dtype);

/** |a - b| <= tol * max|b| + 10 tol |b| elementwise. */
function expectCloseScaled(actual: ArrayLike<number>, expected: number[], what: string, tol = 2e-5): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectClose(actual, expected, what, tol * Math.max(scale, 1e-3), tol * 10);
}

type Built = { module: Module; run: (xs: (Tensor | null)[]) => Tensor };

/** The engine's module for a fixture constructor, and how a case's inputs feed its forward. */
function build(c: Ctor, generator?: Generator, forwardArgs: ModuleCase['forward_args'] = {}): Built {
  const [a0, a1, a2] = c.args as [number, number, number | [number, number]];
  const o = { ...c.opts, generator } as unknown as Record<string, never>;
  const one = (m: Layer): Built => ({ module: m, run: (xs) => m.forward(xs[0]!) });
  switch (c.type) {
    case 'Conv2d':
      return one(new Conv2d(a0, a1, a2, o));
    case 'Conv1d':
      return one(new Conv1d(a0, a1, a2 as number, o));
    case 'ConvTranspose2d': {
      const m = new ConvTranspose2d(a0, a1, a2, o);
      return { module: m, run: (xs) => m.forward(xs[0]!, forwardArgs.output_size) };
    }
    case 'BatchNorm2d':
      return one(new BatchNorm2d(a0, o));
    case 'BatchNorm1d':
      return one(new BatchNorm1d(a0, o));
    case 'GroupNorm':
      return one(new GroupNorm(a0, a1, o));
    case 'LayerNorm2d':
      return one(new LayerNorm2d(a0));
    case 'MultiheadAttention': {
      const m = new MultiheadAttention(a0, a1, o);
      return {
        module: m,
        run: ([q, k, v, attnMask, keyPaddingMask]) =>
          m.forward(q!, k ?? q!, v ?? k ?? q!, { attnMask, keyPaddingMask }),
      };
    }
    case 'Mlp': {
      const { act, norm, ...rest } = c.opts;
      const actLayer = act === 'gelu_tanh' ? () => new GELU('tanh') : act === 'relu' ? () => new ReLU() : undefined;
      const normLayer = norm === 'LayerNorm' ? (f: number) => new LayerNorm(f) : undefined;
      return one(new Mlp(a0, { ...rest, actLayer, normLayer, generator }));
    }
  }
  throw new Error(`unknown module ${c.type}`);
}

describe('vision / transformer modules against torch.nn', () => {
  for (const c of fx.modules) {
    it(c.name, async () => {
      const baseline = device().liveBuffers;
      const { module, run } = build(c.ctor, undefined, c.forward_args);
      // state_dict keys, order, shapes and dtypes are PyTorch's.
      expect([...module.stateDict()].map(([k, t]) => [k, [...t.shape], t.dtype])).toEqual(c.keys);
      const state = new Map(Object.entries(c.state).map(([k, e]) => [k, decode(e)]));
      expect(module.loadStateDict(state)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      for (const t of state.values()) t.dispose();
      module.train(c.train);

      const inputs = c.inputs.map((e) => (e ? (e.dtype === 'f32' ? requiresGrad(decode(e)) : decode(e)) : null));
      const out = tidy(() => {
        const y = run(inputs);
        backward(sum(mul(y, decode(c.cotangent))));
        return y;
      });
      expect([...out.shape], 'output shape').toEqual(c.output.shape);
      expectCloseScaled(await out.data(), c.output.data, `${c.name}: output`);
      for (const [i, g] of c.input_grads.entries()) {
        if (!g) continue;
        expect(inputs[i]!.grad, `${c.name}: grad of input ${i}`).not.toBeNull();
        expectCloseScaled(await inputs[i]!.grad!.data(), g.data, `${c.name}: grad of input ${i}`, 5e-5);
      }
      const params = module.namedParameters();
      expect(params.map(([k]) => k)).toEqual(Object.keys(c.param_grads));
      for (const [k, p] of params) {
        expect(p.grad, `${c.name}: grad of ${k}`).not.toBeNull();
        expectCloseScaled(await p.grad!.data(), c.param_grads[k].data, `${c.name}: grad of ${k}`, 5e-5);
      }
      const buffers = new Map(module.namedBuffers());
      expect([...buffers.keys()]).toEqual(Object.keys(c.buffers_after));
      for (const [k, e] of Object.entries(c.buffers_after)) {
        if (e.dtype === 'i32') expect(Array.from(await buffers.get(k)!.data()), k).toEqual(values(e));
        else expectCloseScaled(await buffers.get(k)!.data(), values(e), `${c.name}: ${k} after the step`);
      }
      if (c.eval_output) {
        module.eval();
        const y = noGrad(() => run(inputs));
        expectCloseScaled(await y.data(), c.eval_output.data, `${c.name}: eval output after the train step`);
        y.dispose();
      }
      for (const t of [out, ...inputs]) {
        t?.grad?.dispose();
        t?.dispose();
      }
      module.dispose();
      expect(device().liveBuffers, 'buffers leaked').toBe(baseline);
    });
  }
});

describe('default initialisation against PyTorch', () => {
  for (const c of fx.init) {
    it(c.name, async () => {
      const { module } = build(c.ctor, new Generator(7));
      const sd = module.stateDict();
      expect([...sd.keys()]).toEqual(Object.keys(c.entries));
      for (const [k, e] of Object.entries(c.entries)) {
        const t = sd.get(k)!;
        expect([...t.shape], k).toEqual(e.shape);
        const v = Array.from(await t.data());
        if (e.bound === undefined) {
          // a constant init (zeros, ones, num_batches_tracked)
          expect(e.min, `${k}: torch's init is constant`).toBe(e.max);
          expect(
            v.every((x) => x === e.min),
            `${k}: all ${e.min}`,
          ).toBe(true);
          continue;
        }
        const n = v.length;
        const maxAbs = Math.max(...v.map(Math.abs));
        const mean = v.reduce((a, b) => a + b, 0) / n;
        const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
        expect(maxAbs, `${k}: max |w| within the bound`).toBeLessThanOrEqual(e.bound * (1 + 1e-6));
        // Uniform draws: n samples reach near the bound, and the spread is torch's (bound / sqrt 3).
        expect(maxAbs, `${k}: max |w| near the bound`).toBeGreaterThan(e.bound * (n >= 256 ? 0.9 : 0.5));
        expect(Math.abs(mean), `${k}: mean`).toBeLessThan((5 * e.bound) / Math.sqrt(3 * n));
        if (n >= 256) {
          expect(Math.abs(std - e.std) / e.std, `${k}: std ${std} vs torch's ${e.std}`).toBeLessThan(0.1);
          expect(Math.abs(std - e.bound / Math.sqrt(3)) / std, `${k}: std of U(-b, b)`).toBeLessThan(0.1);
        }
      }
      module.dispose();
    });
  }
});

describe('MultiheadAttention', () => {
  it('integer masks equal additive masks of MASKED_SCORE; masked keys get no weight', async () => {
    const gen = new Generator(3);
    const m = new MultiheadAttention(8, 2, { batchFirst: true, generator: gen });
    const q = tensor(randomArray(2 * 3 * 8, 1), [2, 3, 8]);
    const kv = tensor(randomArray(2 * 5 * 8, 2), [2, 5, 8]);
    const pad = [0, 1, 0, 0, 1, 0, 0, 1, 1, 0];
    const y = noGrad(() => {
      const asInt = m.forward(q, kv, kv, { keyPaddingMask: tensor(pad, [2, 5], 'i32') });
      const asFloat = m.forward(q, kv, kv, {
        keyPaddingMask: tensor(
          pad.map((p) => p * MASKED_SCORE),
          [2, 5],
        ),
      });
      // Changing a masked key's value leaves the output unchanged.
      const kv2 = tensor(
        randomArray(2 * 5 * 8, 2).map((x, i) => (pad[Math.floor(i / 40) * 5 + (Math.floor(i / 8) % 5)] ? x + 5 : x)),
        [2, 5, 8],
      );
      const moved = m.forward(q, kv2, kv2, { keyPaddingMask: tensor(pad, [2, 5], 'i32') });
      return { asInt, asFloat, moved };
    });
    const a = await y.asInt.data();
    expectClose(await y.asFloat.data(), a, 'float vs integer mask', 1e-6, 1e-5);
    expectClose(await y.moved.data(), a, 'masked keys are ignored', 1e-5, 1e-4);
    m.dispose();
  });

  it('attention dropout acts in training only: p = 1 leaves out_proj.bias, eval ignores it', async () => {
    const m = new MultiheadAttention(6, 2, { dropout: 1, generator: new Generator(1) });
    const x = tensor(randomArray(4 * 2 * 6, 4), [4, 2, 6]);
    const bias = Array.from(await m.out_proj.bias!.data());
    expect(bias.every((b) => b === 0)).toBe(true); // PyTorch zeroes out_proj.bias
    noGrad(() => nn.init.uniform_(m.out_proj.bias!, -1, 1));
    const b = Array.from(await m.out_proj.bias!.data());
    const yTrain = noGrad(() => m.train().forward(x));
    expectClose(await yTrain.data(), Array.from({ length: 4 * 2 }, () => b).flat(), 'dropout 1 in training', 1e-6, 0);
    const yEval = noGrad(() => m.eval().forward(x));
    const mRef = new MultiheadAttention(6, 2, { generator: new Generator(1) });
    mRef.loadStateDict(m.stateDict());
    const yRef = noGrad(() => mRef.eval().forward(x));
    expectClose(await yEval.data(), await yRef.data(), 'eval ignores dropout', 1e-6, 1e-6);
    m.dispose();
    mRef.dispose();
  });

  it('finite differences through the cross-attention with masks and the separate layout', async () => {
    const m = new MultiheadAttention(8, 2, { kdim: 5, vdim: 3, generator: new Generator(11) });
    const am = tensor(randomArray(3 * 4, 12, -2, 0), [3, 4]);
    await checkFiniteDifferences(
      (q, k, v) => m.forward(q, k, v, { attnMask: am }),
      [{ shape: [3, 2, 8] }, { shape: [4, 2, 5] }, { shape: [4, 2, 3] }],
    );
    const s = new MultiheadAttention(8, 2, {
      separate: true,
      downsampleRate: 2,
      batchFirst: true,
      generator: new Generator(12),
    });
    await checkFiniteDifferences((q, k) => s.forward(q, k, k), [{ shape: [1, 3, 8] }, { shape: [1, 5, 8] }]);
    m.dispose();
    s.dispose();
    am.dispose();
  });

  it('rejects bad shapes and options, naming the module and the shapes', () => {
    expect(() => new MultiheadAttention(10, 3)).toThrow(/embed_dim 10 .* divisible by num_heads 3/);
    expect(() => new MultiheadAttention(8, 2, { downsampleRate: 2 })).toThrow(/separate layout/);
    const m = new MultiheadAttention(8, 2, { kdim: 5 });
    const q = tensor(randomArray(3 * 2 * 8, 1), [3, 2, 8]);
    const k8 = tensor(randomArray(4 * 2 * 8, 2), [4, 2, 8]);
    const k5 = tensor(randomArray(4 * 2 * 5, 2), [4, 2, 5]);
    const v = tensor(randomArray(4 * 2 * 8, 3), [4, 2, 8]);
    expect(() => m.forward(q, k8, v)).toThrow(/key \[4, 2, 8\] must be \[L, N, 5\]/);
    expect(() => m.forward(q, k5, v, { attnMask: tensor(randomArray(12, 4), [4, 3]) })).toThrow(
      /attn_mask \[4, 3\] must be \[3, 4\]/,
    );
    expect(() => m.forward(q, k5, v, { keyPaddingMask: tensor([0, 0, 0, 0], [4], 'i32') })).toThrow(
      /key_padding_mask \[4\] must be \[2, 4\]/,
    );
    for (const t of [q, k8, k5, v]) t.dispose();
    m.dispose();
  });
});

describe('vision layers', () => {
  it('finite differences through ConvTranspose2d (k3 s2, groups) and BatchNorm2d in training', async () => {
    const ct = new ConvTranspose2d(4, 2, 3, {
      stride: 2,
      padding: 1,
      outputPadding: 1,
      groups: 2,
      generator: new Generator(5),
    });
    await checkFiniteDifferences((x) => ct.forward(x), [{ shape: [1, 4, 3, 5] }]);
    const bn = new BatchNorm2d(3);
    noGrad(() => {
      nn.init.uniform_(bn.weight!, 0.5, 1.5);
      nn.init.uniform_(bn.bias!, -1, 1);
    });
    await checkFiniteDifferences((x) => bn.forward(x), [{ shape: [2, 3, 3, 5] }]);
    ct.dispose();
    bn.dispose();
  });

  it('ConvTranspose2d output_size outside the reachable range, bad groups and ranks throw', () => {
    const ct = new ConvTranspose2d(2, 3, 3, { stride: 2, padding: 1 });
    const x = tensor(randomArray(40, 1), [1, 2, 5, 4]);
    expect(() => ct.forward(x, [11, 8])).toThrow(/dim 0 must lie in \[9, 10\]/);
    expect(() => new Conv2d(6, 8, 3, { groups: 4 })).toThrow(/divisible by groups 4/);
    expect(() => new ConvTranspose2d(4, 6, 2, { groups: 4 })).toThrow(/divisible by groups 4/);
    expect(() => new GroupNorm(3, 8)).toThrow(/divisible by num_groups 3/);
    expect(() => new BatchNorm1d(2).forward(x)).toThrow(
      /BatchNorm1d: expected input \[N, 2\] or \[N, 2, L\], got \[1, 2, 5, 4\]/,
    );
    expect(() => new BatchNorm2d(3).forward(x)).toThrow(/BatchNorm2d: expected input \[N, 3, H, W\]/);
    x.dispose();
    ct.dispose();
  });

  it('engine/nn/index.ts exports the same classes as the layer modules', () => {
    expect(nn.Conv2d).toBe(Conv2d);
    expect(nn.BatchNorm2d).toBe(BatchNorm2d);
    expect(nn.MultiheadAttention).toBe(MultiheadAttention);
    expect(nn.Mlp).toBe(Mlp);
    expect(nn.LayerNorm2d).toBe(LayerNorm2d);
  });
});

describe('DropPath', () => {
  it(
    'identity in eval and at p = 0; in training each sample is kept (x / keep) or dropped, and so is ' + 'its gradient',
    async () => {
      const x = requiresGrad(ones([400, 3]));
      const dp = new DropPath(0.3, true, new Generator(9));
      expect(dp.eval().forward(x)).toBe(x);
      expect(new DropPath(0).forward(x)).toBe(x);
      dp.train();
      const y = tidy(() => {
        const out = dp.forward(x);
        backward(sum(out));
        return out;
      });
      const v = Array.from(await y.data());
      const g = Array.from(await x.grad!.data());
      let kept = 0;
      for (let i = 0; i < 400; i++) {
        const row = v.slice(3 * i, 3 * i + 3);
        expect(row[0] === 0 || Math.abs(row[0] - 1 / 0.7) < 1e-6, `row ${i}: ${row}`).toBe(true);
        expect(
          row.every((r) => r === row[0]),
          `row ${i} is one decision`,
        ).toBe(true);
        expect(g.slice(3 * i, 3 * i + 3)).toEqual(row); // d(sum)/dx is the mask itself
        if (row[0] !== 0) kept++;
      }
      // Binomial(400, 0.7): mean 280, sd 9.2.
      expect(kept).toBeGreaterThan(280 - 46);
      expect(kept).toBeLessThan(280 + 46);
      y.dispose();
      x.grad?.dispose();
      x.dispose();
    },
  );

  it('scaleByKeep = false keeps samples unscaled', async () => {
    const x = ones([200, 2]);
    const y = noGrad(() => new DropPath(0.5, false, new Generator(2)).forward(x));
    const v = Array.from(await y.data());
    expect(v.every((e) => e === 0 || e === 1)).toBe(true);
    const kept = v.filter((e) => e === 1).length / 2;
    expect(kept).toBeGreaterThan(100 - 36);
    expect(kept).toBeLessThan(100 + 36);
    x.dispose();
    y.dispose();
  });
});
