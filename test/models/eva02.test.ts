// EVA-02 parity with a float64 PyTorch re-implementation of timm's Eva (test/golden/gen_eva02.py):
// the engine model loads the PyTorch state_dict by key, then logits, loss and the gradient of
// every parameter must match, for both layouts (fused qkv + packed GluMlp; separate q/k/v +
// sub-LN SwiGLU) and for the MIM model (mask token, masked-position head, -cos loss).
// Parameter counts of the real sizes are computed from the config (too large for lavapipe).
import { describe, it, expect } from 'vitest';
import { Tensor, tidy, backward, device, crossEntropy, noGrad, Generator, std, mean } from '../../engine/index.ts';
import { Eva02, eva02Config, gridSize, hiddenFeatures, type Eva02Config } from '../../models/eva02.ts';
import { Eva02Mim, mimMask, timmKeyMap } from '../../models/eva02-mim.ts';
import { expectClose, fromEncoded, type Encoded } from '../helpers.ts';
import { readFixture } from '../golden/read-fixture.ts';

interface TorchConfig {
  img_size: [number, number];
  patch_size: number;
  embed_dim: number;
  depth: number;
  num_heads: number;
  mlp_ratio: number;
  qkv_fused: boolean;
  scale_mlp: boolean;
  num_classes: number;
  ref_feat_shape: [number, number] | null;
}
interface ModelCase {
  name: string;
  config: TorchConfig;
  keys: string[];
  state: Record<string, Encoded>;
  input: Encoded;
  grads: Record<string, Encoded>;
  loss: number;
}
interface ClassCase extends ModelCase {
  labels: Encoded;
  logits: Encoded;
  rope: { sin: Encoded; cos: Encoded };
}
interface MimCase extends ModelCase {
  teacher_dim: number;
  mask: Encoded;
  teacher: Encoded;
  pred: Encoded;
}

const FIXTURE = readFixture<{ cases: ClassCase[]; mim: MimCase }>('eva02');

function configOf(c: TorchConfig): Eva02Config {
  return eva02Config('mu', {
    imgSize: c.img_size,
    patchSize: c.patch_size,
    embedDim: c.embed_dim,
    depth: c.depth,
    numHeads: c.num_heads,
    mlpRatio: c.mlp_ratio,
    qkvFused: c.qkv_fused,
    scaleMlp: c.scale_mlp,
    numClasses: c.num_classes,
    refFeatShape: c.ref_feat_shape,
  });
}

/**
 * state_dict keys and shapes of timm's Eva for a config, in state_dict order, written out from
 * timm's layer definitions independently of the model code (sizes too large to build here).
 */
function eva02StateShapes(cfg: Eva02Config): [string, number[]][] {
  const [gh, gw] = gridSize(cfg);
  const d = cfg.embedDim,
    h = hiddenFeatures(cfg),
    p = cfg.patchSize;
  const out: [string, number[]][] = [
    ['cls_token', [1, 1, d]],
    ['pos_embed', [1, gh * gw + 1, d]],
    ['patch_embed.proj.weight', [d, cfg.inChans, p, p]],
    ['patch_embed.proj.bias', [d]],
  ];
  const ln = (name: string, n: number) => out.push([`${name}.weight`, [n]], [`${name}.bias`, [n]]);
  const lin = (name: string, i: number, o: number, bias = true) => {
    out.push([`${name}.weight`, [o, i]]);
    if (bias) out.push([`${name}.bias`, [o]]);
  };
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    ln(`${b}.norm1`, d);
    if (cfg.qkvFused) {
      out.push([`${b}.attn.q_bias`, [d]], [`${b}.attn.v_bias`, [d]]);
      lin(`${b}.attn.qkv`, d, 3 * d, false);
    } else {
      lin(`${b}.attn.q_proj`, d, d);
      lin(`${b}.attn.k_proj`, d, d, false);
      lin(`${b}.attn.v_proj`, d, d);
    }
    lin(`${b}.attn.proj`, d, d);
    ln(`${b}.norm2`, d);
    if (cfg.scaleMlp) {
      lin(`${b}.mlp.fc1_g`, d, h);
      lin(`${b}.mlp.fc1_x`, d, h);
      ln(`${b}.mlp.norm`, h);
    } else {
      lin(`${b}.mlp.fc1`, d, 2 * h);
    }
    lin(`${b}.mlp.fc2`, h, d);
  }
  ln(cfg.globalPool === 'avg' ? 'fc_norm' : 'norm', d);
  if (cfg.numClasses > 0) lin('head', d, cfg.numClasses);
  return out;
}

function loadTorchState(model: Eva02 | Eva02Mim, c: ModelCase): void {
  const state = new Map(Object.entries(c.state).map(([k, e]) => [k, fromEncoded(e)]));
  model.loadStateDict(state);
  for (const t of state.values()) t.dispose();
}

async function expectGrads(model: Eva02 | Eva02Mim, c: ModelCase): Promise<void> {
  const named = model.namedParameters();
  expect(named.map(([k]) => k).sort(), `${c.name}: parameters with gradients`).toEqual(Object.keys(c.grads).sort());
  for (const [k, p] of named) {
    expect(p.grad, `${c.name}: gradient of ${k}`).not.toBeNull();
    expect([...p.grad!.shape], `${c.name}: gradient shape of ${k}`).toEqual(c.grads[k].shape);
    expectClose(await p.grad!.data(), c.grads[k].data, `${c.name}: grad ${k}`, 1e-4, 1e-3);
  }
}

function shapesOf(model: Eva02 | Eva02Mim): [string, number[]][] {
  return [...model.stateDict()].map(([k, t]) => [k, [...t.shape]]);
}

describe('EVA-02 against PyTorch (timm Eva layout)', () => {
  for (const c of FIXTURE.cases) {
    it(`${c.name}: state_dict keys, logits, loss and every parameter gradient`, async () => {
      const base = device().liveBuffers;
      const cfg = configOf(c.config);
      const model = new Eva02(cfg, { generator: new Generator(3) });
      expect([...model.stateDict().keys()], 'state_dict keys in PyTorch order').toEqual(c.keys);
      expect(shapesOf(model), 'analytic shapes').toEqual(eva02StateShapes(cfg));
      expect(shapesOf(model), 'PyTorch shapes').toEqual(c.keys.map((k) => [k, c.state[k].shape]));
      loadTorchState(model, c);

      const x = fromEncoded(c.input);
      const labels = fromEncoded(c.labels);
      const [logits, loss] = tidy(() => {
        const lg = model.forward(x);
        const l = crossEntropy(lg, labels);
        backward(l);
        return [lg, l];
      });
      expect([...logits.shape]).toEqual(c.logits.shape);
      expectClose(await logits.data(), c.logits.data, `${c.name}: logits`, 1e-4, 1e-4);
      expectClose([await loss.item()], [c.loss], `${c.name}: loss`, 1e-5, 1e-4);
      await expectGrads(model, c);

      // The RoPE tables the model uses (rescaled to ref_feat_shape where given).
      expectClose(await model.rope.sin.data(), c.rope.sin.data, `${c.name}: rope sin`, 1e-6, 1e-5);
      expectClose(await model.rope.cos.data(), c.rope.cos.data, `${c.name}: rope cos`, 1e-6, 1e-5);

      for (const t of [x, labels, logits, loss]) t.dispose();
      model.dispose();
      expect(device().liveBuffers, 'every buffer freed').toBe(base);
    });
  }

  it('MIM: mask token, lm_head on masked positions, -mean cos loss and every gradient', async () => {
    const c = FIXTURE.mim;
    const base = device().liveBuffers;
    const cfg = configOf(c.config);
    const model = new Eva02Mim(cfg, c.teacher_dim, { generator: new Generator(4) });
    expect([...model.stateDict().keys()], 'state_dict keys in PyTorch order').toEqual(c.keys);
    expect(shapesOf(model), 'PyTorch shapes').toEqual(c.keys.map((k) => [k, c.state[k].shape]));
    loadTorchState(model, c);

    const [b, l] = c.mask.shape;
    const rows = Array.from({ length: b }, (_, i) => c.mask.data.slice(i * l, (i + 1) * l));
    const mask = mimMask(rows);
    const x = fromEncoded(c.input);
    const teacher = fromEncoded(c.teacher);
    const [pred, loss] = tidy(() => {
      const p = model.forward(x, mask);
      const lo = model.loss(p, teacher, mask);
      backward(lo);
      return [p, lo];
    });
    expect([...pred.shape]).toEqual(c.pred.shape);
    expectClose(await pred.data(), c.pred.data, 'mim: predictions', 1e-4, 1e-4);
    expectClose([await loss.item()], [c.loss], 'mim: loss', 1e-5, 1e-4);
    await expectGrads(model, c);

    for (const t of [x, teacher, pred, loss, mask.weight, mask.index]) t.dispose();
    model.dispose();
    expect(device().liveBuffers, 'every buffer freed').toBe(base);
  });
});

describe('EVA-02 configs, init and checkpoint keys', () => {
  it("backbone parameter counts of Ti / S / B equal timm's 5.5M / 21.6M / 85.8M", () => {
    const count = (p: 'ti' | 's' | 'b' | 'l') =>
      eva02StateShapes(eva02Config(p, { numClasses: 0 })).reduce((n, [, s]) => n + s.reduce((a, d) => a * d, 1), 0);
    expect(count('ti')).toBe(5_502_144);
    expect(count('s')).toBe(21_621_120);
    expect(count('b')).toBe(85_758_720);
    expect((count('ti') / 1e6).toFixed(1)).toBe('5.5');
    expect((count('s') / 1e6).toFixed(1)).toBe('21.6');
    expect((count('b') / 1e6).toFixed(1)).toBe('85.8');
    // Spec table: hidden sizes 512 / 1024 / 2048 / 2730.
    expect(eva02StateShapes(eva02Config('ti')).find(([k]) => k === 'blocks.0.mlp.fc1.weight')![1]).toEqual([1024, 192]);
    expect(eva02StateShapes(eva02Config('l')).find(([k]) => k === 'blocks.0.mlp.fc1_g.weight')![1]).toEqual([
      2730, 1024,
    ]);
    expect(eva02StateShapes(eva02Config('b')).some(([k]) => k.includes('q_bias'))).toBe(false);
  });

  it('µ model: shapes, timm init (trunc normal .02, fix_init_weight, head scale) and an eval forward', async () => {
    const base = device().liveBuffers;
    const cfg = eva02Config('mu');
    const model = new Eva02(cfg, { generator: new Generator(5) }).eval();
    expect(shapesOf(model)).toEqual(eva02StateShapes(cfg));
    const sd = model.stateDict();
    const stat = async (f: (t: Tensor) => Tensor, k: string) => {
      const t = noGrad(() => tidy(() => f(sd.get(k)!)));
      const v = await t.item();
      t.dispose();
      return v;
    };
    const stdOf = (k: string) => stat((t) => std(t), k);
    const meanOf = (k: string) => stat((t) => mean(t), k);
    // blocks.l.attn.proj and mlp.fc2 are divided by sqrt(2 (l + 1)); other Linear weights have std ~.02.
    expect(await stdOf('blocks.0.mlp.fc1_g.weight')).toBeCloseTo(0.02, 2);
    expect(Math.abs((await stdOf('blocks.3.attn.proj.weight')) / (0.02 / Math.sqrt(8)) - 1)).toBeLessThan(0.15);
    expect(Math.abs((await stdOf('blocks.1.mlp.fc2.weight')) / (0.02 / Math.sqrt(4)) - 1)).toBeLessThan(0.15);
    expect(Math.abs((await stdOf('head.weight')) / 2e-5 - 1)).toBeLessThan(0.3);
    expect(await meanOf('blocks.2.attn.q_proj.bias')).toBe(0);
    expect(await meanOf('blocks.2.mlp.norm.weight')).toBe(1);
    const x = noGrad(() => new Generator(6).uniform([1, 3, 64, 64], -1, 1));
    const y = noGrad(() => tidy(() => model.forward(x)));
    expect([...y.shape]).toEqual([1, 10]);
    expect([...(await y.data())].every(Number.isFinite)).toBe(true);
    for (const t of [x, y]) t.dispose();
    model.dispose();
    expect(device().liveBuffers).toBe(base);
  });

  it('µ MIM with drop path and dropout: finite loss and every gradient in train mode; eval deterministic', async () => {
    const base = device().liveBuffers;
    const cfg = eva02Config('mu', { depth: 2, dropPathRate: 0.5, projDropRate: 0.1, posDropRate: 0.1 });
    const model = new Eva02Mim(cfg, 32, { generator: new Generator(8) });
    const rows = [0, 1].map((s) => Array.from({ length: 64 }, (_, i) => ((i * 7 + s * 3) % 5 < 2 ? 1 : 0)));
    const mask = mimMask(rows);
    const x = noGrad(() => new Generator(9).uniform([2, 3, 64, 64], -1, 1));
    const teacher = noGrad(() => new Generator(10).normal([2, 64, 32]));
    const loss = tidy(() => {
      const l = model.loss(model.forward(x, mask), teacher, mask);
      backward(l);
      return l;
    });
    const v = await loss.item();
    expect(Number.isFinite(v) && v >= -1 && v <= 1, `loss ${v}`).toBe(true);
    for (const [k, p] of model.namedParameters()) expect(p.grad, `gradient of ${k}`).not.toBeNull();
    model.eval();
    const [a, b] = [0, 1].map(() => noGrad(() => tidy(() => model.forward(x, mask))));
    expectClose(await a.data(), await b.data(), 'eval forward twice', 0, 0);
    for (const t of [loss, a, b, x, teacher, mask.weight, mask.index]) t.dispose();
    model.dispose();
    expect(device().liveBuffers).toBe(base);
  });

  it('maps original EVA-02 and MIM checkpoint keys to timm keys', () => {
    const sep = { qkvFused: false };
    expect(timmKeyMap('blocks.3.mlp.ffn_ln.weight', sep)).toBe('blocks.3.mlp.norm.weight');
    expect(timmKeyMap('blocks.3.mlp.w1.weight', sep)).toBe('blocks.3.mlp.fc1_g.weight');
    expect(timmKeyMap('blocks.3.mlp.w2.bias', sep)).toBe('blocks.3.mlp.fc1_x.bias');
    expect(timmKeyMap('blocks.3.mlp.w3.weight', sep)).toBe('blocks.3.mlp.fc2.weight');
    expect(timmKeyMap('blocks.0.attn.q_bias', sep)).toBe('blocks.0.attn.q_proj.bias');
    expect(timmKeyMap('blocks.0.attn.v_bias', { qkvFused: true })).toBe('blocks.0.attn.v_bias');
    expect(timmKeyMap('blocks.0.mlp.w12.weight', { qkvFused: true })).toBe('blocks.0.mlp.fc1.weight');
    expect(timmKeyMap('rope.freqs_cos', sep)).toBeNull();
    expect(timmKeyMap('norm.weight', { ...sep, toClassifier: true })).toBe('fc_norm.weight');
    expect(timmKeyMap('lm_head.bias', { ...sep, toClassifier: true })).toBeNull();
    expect(timmKeyMap('mask_token', { ...sep, toClassifier: true })).toBeNull();
    expect(timmKeyMap('mask_token', sep)).toBe('mask_token');
    expect(timmKeyMap('visual.trunk.pos_embed', sep)).toBe('pos_embed');
  });

  it('rejects inputs of the wrong size and unsupported options, naming the model', () => {
    expect(() => new Eva02(eva02Config('mu', { attnDropRate: 0.1 }))).toThrow(/attnDropRate/);
    expect(() => new Eva02(eva02Config('mu', { numHeads: 3 }))).toThrow(/head dim/);
    const model = new Eva02(eva02Config('mu', { depth: 1 }));
    const x = noGrad(() => new Generator(1).uniform([1, 3, 32, 32]));
    expect(() => noGrad(() => model.forward(x))).toThrow(/Eva02: input \[1, 3, 32, 32\] must be \[B, 3, 64, 64\]/);
    x.dispose();
    model.dispose();
  });
});
