// ToCo CAM classifier parity with a float64 PyTorch re-implementation (test/golden/gen_toco.py):
// the engine model loads the PyTorch state_dict by key; main/aux logits, CAMs, the PTC loss, the
// total loss and every parameter gradient must match; then multi-scale + flip CAM (resampled
// pos_embed, RoPE on other grids) and Grad-CAM at both layers. A finite-difference check covers
// the PTC loss's gradient with respect to the tokens on the device.
import { describe, it, expect } from 'vitest';
import {
  tidy,
  backward,
  device,
  noGrad,
  Generator,
  add,
  mul,
  multilabelSoftMarginLoss,
  requiresGrad,
  tensor,
} from '../../engine/index.ts';
import {
  TocoCam,
  tocoConfig,
  ptcLoss,
  ptcLabels,
  affinityMasks,
  multiScaleCam,
  gradCam,
  normaliseCam,
} from '../../models/toco.ts';
import { expectClose, fromEncoded, type Encoded } from '../helpers.ts';
import { readFixture } from '../golden/read-fixture.ts';

interface Fixture {
  config: { img: number; patch: number; dim: number; depth: number; heads: number; aux_layer: number };
  train: {
    keys: string[];
    state: Record<string, Encoded>;
    input: Encoded;
    labels: Encoded;
    token_labels: Encoded;
    cls: Encoded;
    cls_aux: Encoded;
    cam: Encoded;
    cam_aux: Encoded;
    ptc: number;
    loss: number;
    grads: Record<string, Encoded>;
  };
  multiscale: { scales: number[]; cam: Encoded; cam_aux: Encoded };
  gradcam: { final: Encoded; aux: Encoded };
}
const FX = readFixture<Fixture>('toco');

function build(): TocoCam {
  const c = FX.config;
  const model = new TocoCam(
    tocoConfig(
      'mu',
      {
        imgSize: c.img,
        patchSize: c.patch,
        embedDim: c.dim,
        depth: c.depth,
        numHeads: c.heads,
        mlpRatio: 8 / 3,
      },
      { auxLayer: c.aux_layer },
    ),
    { generator: new Generator(5) },
  );
  const state = new Map(Object.entries(FX.train.state).map(([k, e]) => [k, fromEncoded(e)]));
  model.loadStateDict(state);
  for (const t of state.values()) t.dispose();
  return model;
}

function tokenLabels(): Uint8Array[] {
  const e = FX.train.token_labels,
    n = e.shape[1];
  return Array.from({ length: e.shape[0] }, (_, b) => Uint8Array.from(e.data.slice(b * n, (b + 1) * n)));
}

describe('ToCo CAM classifier against PyTorch', () => {
  it(
    'state_dict keys and shapes equal the reference network (encoder.*, classifier.weight, ' + 'aux_classifier.weight)',
    () => {
      const model = build();
      expect([...model.stateDict().keys()]).toEqual(FX.train.keys);
      expect([...model.stateDict()].map(([k, t]) => [k, [...t.shape]])).toEqual(
        FX.train.keys.map((k) => [k, FX.train.state[k].shape]),
      );
    },
  );

  it('logits, CAMs, PTC, loss and every parameter gradient', async () => {
    const base = device().liveBuffers;
    const model = build();
    const x = fromEncoded(FX.train.input),
      y = fromEncoded(FX.train.labels);
    const out = tidy(() => {
      const f = model.forward(x);
      const ptc = ptcLoss(f.x4, tokenLabels());
      const loss = add(add(multilabelSoftMarginLoss(f.cls, y), multilabelSoftMarginLoss(f.clsAux, y)), mul(ptc, 0.2));
      backward(loss);
      return {
        cls: f.cls,
        clsAux: f.clsAux,
        cam: model.cam(f.x4, f.grid),
        camAux: model.cam(f.aux, f.grid, 'aux'),
        ptc,
        loss,
      };
    });
    expectClose(await out.cls.data(), FX.train.cls.data, 'cls', 1e-4, 1e-3);
    expectClose(await out.clsAux.data(), FX.train.cls_aux.data, 'cls_aux', 1e-4, 1e-3);
    expect([...out.cam.shape]).toEqual(FX.train.cam.shape);
    expectClose(await out.cam.data(), FX.train.cam.data, 'cam', 1e-4, 1e-3);
    expectClose(await out.camAux.data(), FX.train.cam_aux.data, 'cam_aux', 1e-4, 1e-3);
    expectClose(await out.ptc.data(), [FX.train.ptc], 'ptc', 1e-5, 1e-4);
    expectClose(await out.loss.data(), [FX.train.loss], 'loss', 1e-5, 1e-4);
    const named = model.namedParameters();
    expect(named.map(([k]) => k).sort()).toEqual(Object.keys(FX.train.grads).sort());
    for (const [k, p] of named) {
      expect(p.grad, `gradient of ${k}`).not.toBeNull();
      expectClose(await p.grad!.data(), FX.train.grads[k].data, `grad ${k}`, 1e-4, 1e-3);
    }
    for (const t of Object.values(out)) t.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
    expect(device().liveBuffers, 'live buffers return to baseline').toBe(base);
  });

  it('multi-scale + flip CAM with ToCo normalisation (other grids: resampled pos_embed, RoPE)', async () => {
    const model = build();
    const x = fromEncoded(FX.train.input);
    const { cam, camAux } = multiScaleCam(model, x, { scales: FX.multiscale.scales });
    expect([...cam.shape]).toEqual(FX.multiscale.cam.shape);
    expectClose(await cam.data(), FX.multiscale.cam.data, 'multi-scale cam', 1e-4, 1e-3);
    expectClose(await camAux.data(), FX.multiscale.cam_aux.data, 'multi-scale aux cam', 1e-4, 1e-3);
    const v = await cam.data();
    expect(Math.min(...v)).toBeCloseTo(0, 6);
    expect(Math.max(...v)).toBeLessThan(1);
    expect(Math.max(...v)).toBeGreaterThan(0.999);
  });

  it.each(['final', 'aux'] as const)('Grad-CAM at the %s layer (autograd on the activations)', async (layer) => {
    const model = build();
    const x = fromEncoded(FX.train.input);
    const g = gradCam(model, x, { layer });
    expect([...g.shape]).toEqual(FX.gradcam[layer].shape);
    expectClose(await g.data(), FX.gradcam[layer].data, `grad-cam ${layer}`, 1e-4, 1e-3);
    expect(
      model.parameters().every((p) => p.grad === null),
      'no parameter gradient left behind',
    ).toBe(true);
  });
});

describe('PTC loss pieces', () => {
  it('affinity masks: same label 1, different 0, ignored rows/columns and the diagonal excluded', () => {
    const m = affinityMasks([[0, 1, 255, 1]]);
    const at = (a: Float32Array, i: number, j: number) => a[i * 4 + j];
    expect(at(m.pos, 1, 3)).toBe(1);
    expect(at(m.neg, 0, 1)).toBe(1);
    expect(at(m.pos, 2, 2) + at(m.neg, 2, 2) + at(m.pos, 0, 2) + at(m.neg, 0, 2) + at(m.pos, 1, 1)).toBe(0);
    expect([m.nPos, m.nNeg]).toEqual([2, 4]);
  });

  it('token labels from a CAM: > high 1, <= low 0, between 255; negatives all 0', () => {
    expect(Array.from(ptcLabels([[0.1, 0.25, 0.5, 0.8]], [1])[0])).toEqual([0, 0, 255, 1]);
    expect(Array.from(ptcLabels([[0.1, 0.9]], [0])[0])).toEqual([0, 0]);
  });

  it('gradient with respect to the tokens matches central finite differences', async () => {
    const labels = [Uint8Array.from([0, 1, 1, 255, 0]), Uint8Array.from([1, 1, 0, 0, 255])];
    const vals = Array.from({ length: 2 * 5 * 3 }, (_, i) => Math.sin(1.7 * i + 0.3) + (i % 3 === 0 ? -0.4 : 0.2));
    const x = requiresGrad(tensor(vals, [2, 5, 3]));
    tidy(() => backward(ptcLoss(x, labels)));
    const analytic = await x.grad!.data();
    const f = async (v: number[]) => (await noGrad(() => tidy(() => ptcLoss(tensor(v, [2, 5, 3]), labels))).data())[0];
    const h = 1e-2;
    for (const i of [0, 4, 7, 13, 22, 29]) {
      const p = [...vals],
        m = [...vals];
      p[i] += h;
      m[i] -= h;
      const fd = ((await f(p)) - (await f(m))) / (2 * h);
      expect(Math.abs(fd - analytic[i]), `d/dx[${i}]: fd ${fd}, analytic ${analytic[i]}`).toBeLessThan(
        2e-3 + 2e-2 * Math.abs(fd),
      );
    }
  });

  it('normaliseCam maps each plane to [0, 1)', async () => {
    const c = tensor([1, 3, 2, 5, -4, -2, -3, -1], [2, 1, 2, 2]);
    expectClose(
      await normaliseCam(c).data(),
      [0, 2 / (4 + 1e-5), 1 / (4 + 1e-5), 4 / (4 + 1e-5), 0, 2 / (3 + 1e-5), 1 / (3 + 1e-5), 3 / (3 + 1e-5)],
      'normalised',
      1e-6,
      1e-5,
    );
  });
});
