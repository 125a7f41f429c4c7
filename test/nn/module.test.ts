// Module system: state_dict keys equal PyTorch's for the same nested model, loading checks and
// errors, modes, flat parameter storage, layers and initialisers.
import { describe, it, expect } from 'vitest';
import {
  Tensor,
  tensor,
  zeros,
  device,
  tidy,
  sum,
  mul,
  backward,
  matmul,
  add,
  transpose,
  manualSeed,
} from '../../engine/index.ts';
import { Module, parameter } from '../../engine/nn/module.ts';
import { flatHomeOf, planFlat } from '../../engine/flat.ts';
import { Linear, LayerNorm, Embedding, Dropout, Identity, ModuleList, Sequential } from '../../engine/nn/layers.ts';
import * as init from '../../engine/nn/init.ts';
import { SGD, AdamW } from '../../engine/optim/index.ts';
import { expectClose, randomArray } from '../helpers.ts';

// The same model in PyTorch (keys below printed by PyTorch 1.13 for it):
//   class Attention(nn.Module): qkv = nn.Linear(8, 24); proj = nn.Linear(8, 8)
//   class Block(nn.Module): norm1 = nn.LayerNorm(8); attn = Attention(); norm2 = nn.LayerNorm(8)
//     mlp = nn.Sequential(nn.Linear(8, 16), nn.Identity(), nn.Dropout(0.1), nn.Linear(16, 8))
//     gamma = nn.Parameter(torch.ones(8))
//   class Stats(nn.Module): weight = nn.Parameter(torch.ones(8)); buffers running_mean (zeros(8)),
//     num_batches_tracked (tensor(0)), cache (zeros(2), persistent=False)
//   class Net(nn.Module): patch_embed = nn.Linear(4, 8); cls_token = nn.Parameter(zeros(1, 1, 8))
//     pos_embed = nn.Parameter(zeros(1, 5, 8)); blocks = nn.ModuleList([Block(), Block()])
//     norm = nn.LayerNorm(8, elementwise_affine=False); stats = Stats(); head = nn.Linear(8, 3, bias=False)
const BLOCK_KEYS = (i: number) => [
  `blocks.${i}.gamma`,
  ...[
    'norm1.weight',
    'norm1.bias',
    'attn.qkv.weight',
    'attn.qkv.bias',
    'attn.proj.weight',
    'attn.proj.bias',
    'norm2.weight',
    'norm2.bias',
    'mlp.0.weight',
    'mlp.0.bias',
    'mlp.3.weight',
    'mlp.3.bias',
  ].map((k) => `blocks.${i}.${k}`),
];
const TORCH_STATE_KEYS = [
  'cls_token',
  'pos_embed',
  'patch_embed.weight',
  'patch_embed.bias',
  ...BLOCK_KEYS(0),
  ...BLOCK_KEYS(1),
  'stats.weight',
  'stats.running_mean',
  'stats.num_batches_tracked',
  'head.weight',
];
const TORCH_PARAM_KEYS = TORCH_STATE_KEYS.filter((k) => !k.startsWith('stats.running') && !k.startsWith('stats.num'));
const TORCH_BUFFER_KEYS = ['stats.running_mean', 'stats.num_batches_tracked', 'stats.cache'];
const TORCH_NUM_PARAMETERS = 1336;

class Attention extends Module {
  qkv = new Linear(8, 24);
  proj = new Linear(8, 8);
}
class Block extends Module {
  norm1 = new LayerNorm(8);
  attn = new Attention();
  norm2 = new LayerNorm(8);
  mlp = new Sequential(new Linear(8, 16), new Identity(), new Dropout(0.1), new Linear(16, 8));
  gamma = parameter(init.ones([8]));
}
class Stats extends Module {
  weight = parameter(init.ones([8]));
  declare running_mean: Tensor;
  constructor() {
    super();
    this.registerBuffer('running_mean', zeros([8]));
    this.registerBuffer('num_batches_tracked', tensor([0], [], 'i32'));
    this.registerBuffer('cache', zeros([2]), false);
  }
}
class Net extends Module {
  patch_embed = new Linear(4, 8);
  cls_token = parameter(init.zeros([1, 1, 8]));
  pos_embed = parameter(init.zeros([1, 5, 8]));
  blocks = new ModuleList([new Block(), new Block()]);
  norm = new LayerNorm(8, { elementwiseAffine: false });
  stats = new Stats();
  head = new Linear(8, 3, { bias: false });
  scratch = tensor([1, 2], [2]); // a plain tensor field: a constant, not state
}

describe('Module', () => {
  it("state_dict keys, parameters and buffers are PyTorch's, in PyTorch's order", () => {
    const net = new Net();
    expect([...net.stateDict().keys()]).toEqual(TORCH_STATE_KEYS);
    expect(net.namedParameters().map(([k]) => k)).toEqual(TORCH_PARAM_KEYS);
    expect(net.namedBuffers().map(([k]) => k)).toEqual(TORCH_BUFFER_KEYS);
    expect(net.numParameters()).toBe(TORCH_NUM_PARAMETERS);
    expect(net.parameters().every((p) => p.requiresGrad && p.kept)).toBe(true);
    expect(net.stateDict().get('blocks.1.attn.qkv.weight')!.shape).toEqual([24, 8]);
    net.dispose();
    net.scratch.dispose();
  });

  it('loads a state dict by copying values in place, and round-trips', async () => {
    const a = new Net();
    const b = new Net();
    const w = b.blocks.at(1).attn.qkv.weight;
    b.loadStateDict(a.stateDict());
    expect(b.blocks.at(1).attn.qkv.weight).toBe(w); // same tensor, new values
    for (const [k, t] of a.stateDict())
      expect(Array.from(await b.stateDict().get(k)!.data()), k).toEqual(Array.from(await t.data()));
    const rec = Object.fromEntries(a.stateDict());
    expect(b.loadStateDict(rec)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const m of [a, b]) {
      m.dispose();
      m.scratch.dispose();
    }
  });

  it('load errors name every missing and unexpected key and every shape mismatch, and copy nothing', async () => {
    const net = new Net();
    const sd = new Map(net.stateDict());
    const before = Array.from(await net.head.weight.data());
    sd.delete('blocks.0.norm1.bias');
    sd.delete('head.weight');
    const extra = tensor([1], [1]);
    sd.set('head.bias', extra);
    const wrong = zeros([3, 8]);
    sd.set('patch_embed.weight', wrong);
    const headNew = zeros([3, 8]);
    let msg = '';
    try {
      net.loadStateDict(sd);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('Error(s) in loading state_dict for Net');
    expect(msg).toContain('Missing key(s) in state_dict: "blocks.0.norm1.bias", "head.weight".');
    expect(msg).toContain('Unexpected key(s) in state_dict: "head.bias".');
    expect(msg).toContain(
      'size mismatch for patch_embed.weight: copying a param with shape [3, 8] from checkpoint, the ' +
        'shape in current model is [8, 4].',
    );
    // Not strict: missing/unexpected are reported, shape mismatches still fail.
    expect(() => net.loadStateDict(sd, { strict: false })).toThrow(/size mismatch for patch_embed\.weight/);
    sd.set('patch_embed.weight', net.patch_embed.weight);
    sd.set('cls_token', zeros([1, 1, 8]));
    expect(net.loadStateDict(sd, { strict: false })).toEqual({
      missingKeys: ['blocks.0.norm1.bias', 'head.weight'],
      unexpectedKeys: ['head.bias'],
    });
    expect(Array.from(await net.head.weight.data())).toEqual(before);
    for (const t of [extra, wrong, headNew]) t.dispose();
    net.dispose();
    net.scratch.dispose();
  });

  it('train()/eval() reach every descendant; Dropout follows them', async () => {
    const net = new Net();
    expect(net.modules().every((m) => m.training)).toBe(true);
    net.eval();
    expect(net.modules().some((m) => m.training)).toBe(false);
    const x = tensor(new Array(64).fill(1), [64]);
    const drop = net.blocks.at(0).mlp.at(2) as Dropout;
    const y = drop.forward(x);
    expect(y).toBe(x);
    net.train();
    const z = new Dropout(0.5);
    const yz = z.forward(x);
    const v = Array.from(await yz.data());
    expect(v.every((e) => e === 0 || e === 2)).toBe(true);
    expect(v.some((e) => e === 0)).toBe(true);
    for (const t of [x, yz]) t.dispose();
    net.dispose();
    net.scratch.dispose();
  });

  it('zeroGrad drops gradients; dispose frees every buffer; arrays of modules are refused', () => {
    const base = device().liveBuffers;
    const net = new Sequential(new Linear(3, 4), new LayerNorm(4), new Linear(4, 2));
    tidy(() => backward(sum(net.forward(tensor(randomArray(6, 1), [2, 3])))));
    expect(net.parameters().every((p) => p.grad)).toBe(true);
    net.zeroGrad();
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);
    net.dispose();
    expect(device().liveBuffers).toBe(base);
    class Bad extends Module {
      layers = [new Linear(1, 1)];
    }
    const bad = new Bad();
    expect(() => bad.parameters()).toThrow(/field 'layers' is an array of modules; use ModuleList/);
    bad.layers[0].dispose();
    class Hidden extends Module {
      heads = { cls: new Linear(1, 1) };
    }
    const hidden = new Hidden();
    expect(() => hidden.stateDict()).toThrow(/field 'heads' is a plain object holding modules or parameters/);
    hidden.heads.cls.dispose();
  });

  it('ModuleList and Sequential index, iterate and chain', async () => {
    const l = new ModuleList([new Linear(2, 2)]);
    l.push(new Linear(2, 3));
    expect(l.length).toBe(2);
    expect(l.at(-1).outFeatures).toBe(3);
    expect([...l].map((m) => m.outFeatures)).toEqual([2, 3]);
    expect([...l.stateDict().keys()]).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    expect(() => l.at(2)).toThrow(/out of range/);
    const seq = new Sequential(l.at(0), new Identity(), l.at(1));
    const x = tensor([1, -2, 0.5, 3], [2, 2]);
    const y = seq.forward(x);
    const ref = tidy(() => l.at(1).forward(l.at(0).forward(x)));
    expect(Array.from(await y.data())).toEqual(Array.from(await ref.data()));
    for (const t of [x, y, ref]) t.dispose();
    l.dispose();
  });
});

describe('layers', () => {
  it('Linear: y = x W^T + b, PyTorch default init U(-1/sqrt(in), 1/sqrt(in))', async () => {
    manualSeed(5);
    const lin = new Linear(50, 40);
    const w = Array.from(await lin.weight.data());
    const b = Array.from(await lin.bias!.data());
    const bound = 1 / Math.sqrt(50);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(Math.abs(std - bound / Math.sqrt(3)) / (bound / Math.sqrt(3))).toBeLessThan(0.05); // 2000 samples
    const x = tensor(randomArray(3 * 50, 2), [3, 50]);
    const y = lin.forward(x);
    const ref = tidy(() => add(matmul(x, transpose(lin.weight)), lin.bias!));
    expectClose(await y.data(), await ref.data(), 'linear');
    expect(() => lin.forward(tensor([1, 2], [1, 2]))).toThrow(
      /Linear: input \[1, 2\] has last dim 2, expected in_features 50/,
    );
    for (const t of [x, y, ref]) t.dispose();
    lin.dispose();
  });

  it('LayerNorm ones/zeros, Embedding N(0, 1) and lookup', async () => {
    const ln = new LayerNorm([2, 3], { eps: 1e-6 });
    expect(Array.from(await ln.weight!.data())).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(await ln.bias!.data())).toEqual([0, 0, 0, 0, 0, 0]);
    const x = tensor([1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1], [2, 2, 3]);
    const y = Array.from(await ln.forward(x).data());
    const s = Math.sqrt(35 / 12 + 1e-6);
    expectClose(
      y.slice(0, 6),
      [1, 2, 3, 4, 5, 6].map((v) => (v - 3.5) / s),
      'layer norm',
    );
    manualSeed(9);
    const emb = new Embedding(1000, 8);
    const w = Array.from(await emb.weight.data());
    const mean = w.reduce((a, v) => a + v, 0) / w.length;
    const sd = Math.sqrt(w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.05); // 8000 samples: 4.5 sigma
    expect(Math.abs(sd - 1)).toBeLessThan(0.05);
    const ids = tensor([3, 0, 999], [3], 'i32');
    const e = Array.from(await emb.forward(ids).data());
    expect(e.slice(0, 8)).toEqual(w.slice(24, 32));
    expect(e.slice(16)).toEqual(w.slice(999 * 8));
    for (const t of [x, ids]) t.dispose();
    ln.dispose();
    emb.dispose();
  });
});

describe('initialisers', () => {
  it('fans and gains follow torch.nn.init', () => {
    expect(init.calculateFanInAndFanOut([16, 3, 7, 7])).toEqual([147, 784]); // conv [out, in, kh, kw]
    expect(init.calculateFanInAndFanOut([10, 20])).toEqual([20, 10]);
    expect(() => init.calculateFanInAndFanOut([5])).toThrow(/fewer than 2 dims/);
    expect(init.calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(init.calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(init.calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / 1.0001), 12);
    expect(init.calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
  });

  const stats = (v: ArrayLike<number>) => {
    const a = Array.from(v);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    return {
      mean,
      std: Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length),
      min: Math.min(...a),
      max: Math.max(...a),
    };
  };

  it('kaiming and xavier: bounds and standard deviations', async () => {
    const shape = [64, 32, 3, 3]; // fan_in 288, fan_out 576; 18432 samples
    const cases: [Tensor, number, number | null][] = [
      [
        init.kaimingUniform(shape, { nonlinearity: 'relu' }),
        Math.SQRT2 / Math.sqrt(288),
        (Math.sqrt(3) * Math.SQRT2) / Math.sqrt(288),
      ],
      [init.kaimingNormal(shape, { mode: 'fan_out', nonlinearity: 'relu' }), Math.SQRT2 / Math.sqrt(576), null],
      [init.xavierUniform(shape), Math.sqrt(2 / 864), Math.sqrt(6 / 864)],
      [init.xavierNormal(shape, { gain: 2 }), 2 * Math.sqrt(2 / 864), null],
    ];
    for (const [t, std, bound] of cases) {
      const s = stats(await t.data());
      expect(Math.abs(s.std - std) / std).toBeLessThan(0.03);
      expect(Math.abs(s.mean)).toBeLessThan(0.03 * std);
      if (bound !== null) expect(Math.max(-s.min, s.max)).toBeLessThanOrEqual(bound * (1 + 1e-6));
      t.dispose();
    }
  });

  it("truncNormal: samples lie in [a, b] with the truncated normal's mean and std", async () => {
    // mean 0.5, std 1, a = -1, b = 1.2 (absolute bounds, as PyTorch's trunc_normal_).
    const [mu, sigma, a, b] = [0.5, 1, -1, 1.2];
    const t = init.truncNormal([20000], { mean: mu, std: sigma, a, b });
    const s = stats(await t.data());
    const al = (a - mu) / sigma,
      be = (b - mu) / sigma;
    const phi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
    const Z = init.normCdf(be) - init.normCdf(al);
    const mean = mu + (sigma * (phi(al) - phi(be))) / Z;
    const sd = sigma * Math.sqrt(1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2);
    expect(s.min).toBeGreaterThanOrEqual(a);
    expect(s.max).toBeLessThanOrEqual(b);
    expect(Math.abs(s.mean - mean)).toBeLessThan((4 * sd) / Math.sqrt(20000));
    expect(Math.abs(s.std - sd) / sd).toBeLessThan(0.03);
    // The ViT default: std 0.02 inside [-2, 2], effectively untruncated.
    const v = init.truncNormal([20000], { std: 0.02 });
    const sv = stats(await v.data());
    expect(Math.abs(sv.std - 0.02) / 0.02).toBeLessThan(0.03);
    for (const x of [t, v]) x.dispose();
  });

  it('erfinv matches known values', async () => {
    const x = tensor([-0.9, -0.5, 0, 0.3, 0.99, 0.999999], [6]);
    const y = init.erfinv(x);
    // torch.erfinv (float64) of the float32-rounded inputs.
    expectClose(
      await y.data(),
      [-1.163087071945772, -0.4769362762044699, 0, 0.2724627261055238, 1.8213866009002788, 3.4570747260298265],
      'erfinv',
      1e-6,
      1e-6,
    );
    for (const t of [x, y]) t.dispose();
  });

  it('in-place initialisers keep a flattened parameter where it lives', async () => {
    const lin = new Linear(16, 8).flattenParameters();
    const w = lin.weight;
    init.truncNormal_(lin.weight, { std: 0.02 });
    init.constant_(lin.bias!, 0.25);
    expect(lin.weight).toBe(w);
    expect(flatHomeOf(lin.weight)).toBeDefined();
    expect(Array.from(await lin.bias!.data())).toEqual(new Array(8).fill(0.25));
    expect(Math.max(...Array.from(await w.data()).map(Math.abs))).toBeLessThan(0.2);
    lin.dispose();
  });
});

describe('flat parameters', () => {
  it('planFlat starts every tensor on a 64-element boundary and opens a new buffer when one is full', () => {
    expect(planFlat([100, 64, 1, 200, 0], 256)).toEqual({
      slabSizes: [256, 256],
      slots: [
        { slab: 0, offset: 0, size: 100 },
        { slab: 0, offset: 128, size: 64 },
        { slab: 0, offset: 192, size: 1 },
        { slab: 1, offset: 0, size: 200 },
        { slab: 1, offset: 256, size: 0 },
      ],
    });
    expect(() => planFlat([300], 256)).toThrow(
      /a tensor of 300 elements exceeds the largest bindable buffer \(256 f32\)/,
    );
  });

  it(
    'flattenParameters keeps values, grads and keys; one flat buffer; training matches the unflattened ' + 'model',
    async () => {
      const base = device().liveBuffers;
      manualSeed(1);
      const a = new Net();
      manualSeed(1);
      const b = new Net();
      const before = await Promise.all(b.parameters().map(async (p) => Array.from(await p.data())));
      const buffersBefore = device().liveBuffers;
      b.flattenParameters();
      // Every parameter buffer became a window of one flat buffer.
      expect(device().liveBuffers).toBe(buffersBefore - b.parameters().length + 1);
      expect([...b.stateDict().keys()]).toEqual(TORCH_STATE_KEYS);
      const homes = b.parameters().map((p) => flatHomeOf(p)!);
      expect(homes.every((h) => h && h.slab === homes[0].slab && h.offset % 64 === 0)).toBe(true);
      expect(b.blocks.at(0).attn.qkv.weight).toBe(b.stateDict().get('blocks.0.attn.qkv.weight'));
      const after = await Promise.all(b.parameters().map(async (p) => Array.from(await p.data())));
      expect(after).toEqual(before);
      // Same data, same optimizer: identical parameters after three steps.
      const x = tensor(randomArray(5 * 4, 3), [5, 4]);
      const run = (net: Net) => {
        manualSeed(7); // the same dropout masks for both runs
        const opt = new AdamW(net.parameters(), { lr: 1e-2 });
        for (let k = 0; k < 3; k++) {
          tidy(() => {
            let h = net.patch_embed.forward(x);
            for (const blk of net.blocks) h = blk.mlp.forward(blk.norm1.forward(h));
            backward(sum(mul(net.head.forward(net.norm.forward(h)), net.head.forward(net.norm.forward(h)))));
            opt.step();
            net.zeroGrad();
          });
        }
        return opt;
      };
      const oa = run(a),
        ob = run(b);
      const pa = a.parameters(),
        pb = b.parameters();
      for (let i = 0; i < pa.length; i++)
        expect(Array.from(await pb[i].data()), `parameter ${i}`).toEqual(Array.from(await pa[i].data()));
      oa.dispose();
      ob.dispose();
      for (const m of [a, b]) {
        m.dispose();
        m.scratch.dispose();
      }
      x.dispose();
      expect(device().liveBuffers).toBe(base);
    },
  );

  it('an optimizer also works on parameters added after flattening (copied in and out)', async () => {
    const net = new Sequential(new Linear(3, 3)).flattenParameters();
    net.push(new Linear(3, 2));
    const p = net.parameters();
    expect(p.map((t) => Boolean(flatHomeOf(t)))).toEqual([true, true, false, false]);
    const before = Array.from(await p[3].data());
    const opt = new SGD(p, { lr: 0.5 });
    for (const t of p) t.grad = tensor(new Array(t.size).fill(1), t.shape).keep();
    opt.step();
    expectClose(
      await p[3].data(),
      before.map((v) => v - 0.5),
      'loose parameter updated',
    );
    opt.zeroGrad();
    opt.dispose();
    net.dispose();
  });
});
