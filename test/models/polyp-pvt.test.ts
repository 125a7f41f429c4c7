// Polyp-PVT (PVTv2 backbone + CIM/CFM/SAM head) against a float64 PyTorch re-implementation
// (test/golden/gen_polyp_pvt.py): state_dict keys and shapes, P1/P2, the structure loss and every
// parameter gradient of one train-mode step, the BatchNorm running statistics it updates, and
// the PVTv2 presets' parameter counts (analytic, against PyTorch's counts and the paper's).
import { readFixture } from '../golden/read-fixture.ts';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Tensor, tensor, tidy, noGrad, backward, device, narrow } from '../../engine/index.ts';
import { Conv2d, Conv1d, BatchNorm2d } from '../../engine/nn/index.ts';
import { PVT_V2, pvtV2, pvtV2NumParameters, pvtV2KeyFromCheckpoint, type PvtV2Config } from '../../models/pvtv2.ts';
import { PolypPVT, polypPvt, polypPvtLoss, type PolypPvtConfig } from '../../models/polyp-pvt.ts';
import { expectClose } from '../helpers.ts';

interface Quantised {
  shape: number[];
  dtype: 'f32' | 'i32';
  scale: number;
  q: number[];
}
interface Encoded {
  shape: number[];
  dtype: 'f32';
  data: number[];
}
interface Fixture {
  config: PolypPvtConfig;
  loss_variant: 'mean_bce' | 'weighted_bce';
  state_dict: Record<string, Quantised>;
  input: Quantised;
  mask: Quantised;
  p1: Encoded;
  p2: Encoded;
  loss: number;
  loss_weighted: number;
  grads: Record<string, Encoded>;
  running_after: Record<string, Encoded>;
  eval_p1: Encoded;
  eval_p2: Encoded;
  num_parameters: number;
  backbone_num_parameters: number;
  pvt_v2_num_parameters: Record<'b0' | 'b1' | 'b2' | 'mu', number>;
}

const fx = readFixture<Fixture>('polyp_pvt');

const dequant = (e: Quantised) =>
  tensor(
    e.q.map((v) => v * e.scale),
    e.shape,
    e.dtype,
  );

/** |a - b| <= atol + rtol |b| per element, with atol scaled by the tensor's largest expected value. */
function expectCloseScaled(actual: ArrayLike<number>, expected: number[], what: string, tol = 1e-4): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectClose(actual, expected, what, tol * Math.max(scale, 1e-3), tol * 10);
}

describe('vision layers', () => {
  it("Conv2d / Conv1d / BatchNorm2d: PyTorch's keys, shapes and default initialisation", async () => {
    const conv = new Conv2d(6, 8, 3, { groups: 2, padding: 1 });
    const c1 = new Conv1d(5, 4, 1, { bias: false });
    const bn = new BatchNorm2d(3);
    expect([...conv.stateDict()].map(([k, t]) => [k, [...t.shape]])).toEqual([
      ['weight', [8, 3, 3, 3]],
      ['bias', [8]],
    ]);
    expect([...c1.stateDict()].map(([k, t]) => [k, [...t.shape]])).toEqual([['weight', [4, 5, 1]]]);
    expect([...bn.stateDict()].map(([k, t]) => [k, t.dtype])).toEqual([
      ['weight', 'f32'],
      ['bias', 'f32'],
      ['running_mean', 'f32'],
      ['running_var', 'f32'],
      ['num_batches_tracked', 'i32'],
    ]);
    expect(bn.namedParameters().map(([k]) => k)).toEqual(['weight', 'bias']);
    // kaiming_uniform(a = sqrt(5)) and the bias both lie in +-1/sqrt(fan_in), fan_in = 3 * 3 * 3.
    const bound = 1 / Math.sqrt(27);
    const [w, b] = [Array.from(await conv.weight.data()), Array.from(await conv.bias!.data())].map((v) =>
      Math.max(...v.map(Math.abs)),
    );
    expect(w).toBeLessThanOrEqual(bound);
    expect(w).toBeGreaterThan(bound * 0.9); // 216 draws reach near the bound
    expect(b).toBeLessThanOrEqual(bound);
    expect(Array.from(await bn.running_var.data())).toEqual([1, 1, 1]);
    expect(() => new Conv2d(6, 8, 3, { groups: 4 })).toThrow(/divisible by groups 4/);
    for (const m of [conv, c1, bn]) m.dispose();
  });
});

describe('Polyp-PVT structure', () => {
  it("state_dict keys, order and shapes equal PyTorch's", () => {
    const model = new PolypPVT(fx.config);
    const sd = model.stateDict();
    expect([...sd.keys()]).toEqual(Object.keys(fx.state_dict));
    for (const [k, t] of sd) {
      expect([...t.shape], k).toEqual(fx.state_dict[k].shape);
      expect(t.dtype, k).toBe(fx.state_dict[k].dtype);
    }
    expect(model.numParameters()).toBe(fx.num_parameters);
    expect(model.backbone.numParameters()).toBe(fx.backbone_num_parameters);
    model.dispose();
  });

  it("checkpoint keys: the official names pass through, timm's are mapped back, the head is dropped", () => {
    const backboneKeys = Object.keys(fx.state_dict)
      .filter((k) => k.startsWith('backbone.'))
      .map((k) => k.slice('backbone.'.length));
    expect(backboneKeys.map(pvtV2KeyFromCheckpoint)).toEqual(backboneKeys);
    // timm's names for the same tensors (its _checkpoint_filter_fn applied to the official keys).
    const timm: [string, string | null][] = [
      ['patch_embed.proj.weight', 'patch_embed1.proj.weight'],
      ['stages.1.downsample.norm.bias', 'patch_embed2.norm.bias'],
      ['stages.3.downsample.proj.bias', 'patch_embed4.proj.bias'],
      ['stages.0.blocks.0.attn.sr.weight', 'block1.0.attn.sr.weight'],
      ['stages.2.blocks.5.mlp.dwconv.weight', 'block3.5.mlp.dwconv.dwconv.weight'],
      ['stages.2.blocks.5.mlp.fc2.bias', 'block3.5.mlp.fc2.bias'],
      ['stages.3.norm.weight', 'norm4.weight'],
      ['head.weight', null],
    ];
    for (const [from, to] of timm) expect(pvtV2KeyFromCheckpoint(from), from).toBe(to);
  });

  it("PVTv2 parameter counts (no head): analytic = PyTorch = the paper's 3.4M / 13.5M / 24.8M", () => {
    const millions = (n: number) => Math.round(n / 1e5) / 10;
    for (const v of ['b0', 'b1', 'b2', 'mu'] as const)
      expect(pvtV2NumParameters(PVT_V2[v]), v).toBe(fx.pvt_v2_num_parameters[v]);
    expect(millions(pvtV2NumParameters(PVT_V2.b0))).toBe(3.4);
    expect(millions(pvtV2NumParameters(PVT_V2.b1))).toBe(13.5);
    expect(millions(pvtV2NumParameters(PVT_V2.b2))).toBe(24.8);
    // The analytic count is the built module's (b2 is not built: 25M parameters on a CPU driver).
    for (const c of [fx.config.backbone, PVT_V2.mu, PVT_V2.b0] as PvtV2Config[]) {
      const m = pvtV2(c);
      expect(m.numParameters()).toBe(pvtV2NumParameters(c));
      if (c === PVT_V2.b0) {
        // drop path rises linearly over the 8 blocks: torch.linspace(0, 0.1, 8)
        const rates = [m.block1, m.block2, m.block3, m.block4].flatMap((l) => [...l].map((b) => b.dropPathRate));
        expectClose(
          rates,
          Array.from({ length: 8 }, (_, i) => (0.1 * i) / 7),
          'drop path rates',
          1e-12,
          0,
        );
      }
      m.dispose();
    }
  });
});

describe('Polyp-PVT against PyTorch (one train-mode step)', () => {
  let model: PolypPVT;
  let outs: { p1: Tensor; p2: Tensor; loss: Tensor };
  let baseline: number;

  beforeAll(() => {
    baseline = device().liveBuffers;
    model = new PolypPVT(fx.config);
    const state = new Map(Object.entries(fx.state_dict).map(([k, e]) => [k, dequant(e)]));
    model.loadStateDict(state);
    for (const t of state.values()) t.dispose();
    model.train();
    outs = tidy(() => {
      const x = dequant(fx.input);
      const mask = dequant(fx.mask);
      const [p1, p2] = model.forward(x);
      const loss = polypPvtLoss([p1, p2], mask, { faithfulBce: fx.loss_variant === 'mean_bce' });
      backward(loss);
      return { p1, p2, loss };
    });
  });

  afterAll(() => {
    outs.p1.dispose();
    outs.p2.dispose();
    outs.loss.dispose();
    model.dispose();
  });

  it('P1 and P2', async () => {
    expect([...outs.p1.shape]).toEqual(fx.p1.shape);
    expect([...outs.p2.shape]).toEqual(fx.p2.shape);
    expectCloseScaled(await outs.p1.data(), fx.p1.data, 'P1');
    expectCloseScaled(await outs.p2.data(), fx.p2.data, 'P2');
  });

  it(`structure loss P1 + P2 (${fx.loss_variant})`, async () => {
    expect(Math.abs((await outs.loss.item()) - fx.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(fx.loss)));
    // The paper's weighted BCE (faithfulBce false) on the same outputs.
    const weighted = noGrad(() =>
      tidy(() => polypPvtLoss([outs.p1, outs.p2], dequant(fx.mask), { faithfulBce: false })),
    );
    expect(Math.abs((await weighted.item()) - fx.loss_weighted)).toBeLessThan(
      1e-4 * Math.max(1, Math.abs(fx.loss_weighted)),
    );
    weighted.dispose();
  });

  it('every parameter gradient', async () => {
    const named = model.namedParameters();
    expect(named.map(([k]) => k)).toEqual(Object.keys(fx.grads));
    for (const [k, p] of named) {
      expect(p.grad, `${k}: gradient missing`).not.toBeNull();
      expectCloseScaled(await p.grad!.data(), fx.grads[k].data, `grad ${k}`);
    }
  });

  it('BatchNorm running statistics after the step', async () => {
    const sd = model.stateDict();
    for (const [k, e] of Object.entries(fx.running_after)) expectCloseScaled(await sd.get(k)!.data(), e.data, k);
    for (const [k, t] of sd) if (k.endsWith('num_batches_tracked')) expect(await t.item(), k).toBe(1);
  });

  it('eval mode after the step (BatchNorm on the running statistics): P1 and P2 of the first image', async () => {
    model.eval();
    const [e1, e2] = noGrad(() =>
      tidy(() => {
        const x = dequant(fx.input);
        return model.forward(narrow(x, 0, 0, 1));
      }),
    );
    model.train();
    expectCloseScaled(await e1.data(), fx.eval_p1.data, 'eval P1');
    expectCloseScaled(await e2.data(), fx.eval_p2.data, 'eval P2');
    e1.dispose();
    e2.dispose();
  });

  it('frees every intermediate: only parameters, buffers, gradients and the kept outputs stay alive', () => {
    const state = model.stateDict().size;
    const grads = model.parameters().length;
    expect(device().liveBuffers - baseline).toBe(state + grads + 3);
  });
});

describe('Polyp-PVT-µ (spec §4)', () => {
  it('64² input: backbone maps at strides 4/8/16/32, P1 and P2 at full size', async () => {
    const model = polypPvt('mu');
    model.eval();
    const shapes = noGrad(() =>
      tidy(() => {
        const x = tensor(
          Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => ((i * 37) % 255) / 255),
          [2, 3, 64, 64],
        );
        const feats = model.forwardFeatures(x);
        const [p1, p2] = model.forwardHead(feats);
        return [...feats, p1, p2].map((t) => [...t.shape]);
      }),
    );
    expect(shapes).toEqual([
      [2, 16, 16, 16],
      [2, 32, 8, 8],
      [2, 64, 4, 4],
      [2, 128, 2, 2],
      [2, 1, 64, 64],
      [2, 1, 64, 64],
    ]);
    // 48² (64 x 0.75) leaves x4 at 2² and x3 at 3²: CFM cannot fuse them; the error says why.
    expect(() =>
      noGrad(() => tidy(() => model.forward(tensor(new Array(3 * 48 * 48).fill(0.5), [1, 3, 48, 48])))),
    ).toThrow(/multiples of 32/);
    model.dispose();
  });
});
