// SAM's prompt encoder + mask decoder against a float64 PyTorch re-implementation with
// segment-anything's module structure (test/golden/gen_sam_decoder.py, sam_ref.py): state_dict keys
// and shapes at SAM's size, the parameter count (prompt encoder + mask decoder), a reduced config's
// prompt embeddings, all masks and IoU predictions and every parameter gradient for point, box and
// mask prompts, the post-processing, one forward at SAM's dimensions, and the fused attention at
// the decoder's 16-d-head cross-attention shapes.
import { readFixture } from '../golden/read-fixture.ts';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  Tensor,
  tensor,
  tidy,
  noGrad,
  backward,
  device,
  add,
  sum,
  mul,
  requiresGrad,
  expand,
} from '../../engine/index.ts';
import { scaledDotProductAttention, attentionReference } from '../../engine/ops/attention.ts';
import {
  SAM_DECODER,
  SamPromptDecoder,
  selectMasks,
  postprocessMasks,
  type SamDecoderConfig,
} from '../../models/sam-decoder.ts';
import { expectClose, randomArray } from '../helpers.ts';

interface Quantised {
  shape: number[];
  dtype: 'f32';
  scale: number;
  q: number[];
}
interface Encoded {
  shape: number[];
  dtype: 'f32';
  data: number[];
}
interface Case {
  image: Quantised;
  points: number[];
  points_shape: number[];
  labels: number[];
  boxes: number[] | null;
  mask_input: Quantised | null;
  sparse: Encoded;
  dense: Encoded;
  masks: Encoded;
  iou: Encoded;
  cot_masks: Quantised;
  cot_iou: Quantised;
  postprocessed?: Encoded;
}
interface Fixture {
  reduced: {
    config: SamDecoderConfig;
    state_dict: Record<string, Quantised>;
    dense_pe: Encoded;
    cases: Record<'a' | 'b', Case>;
    grads: Record<string, Encoded>;
    num_parameters: number;
  };
  full: {
    config: SamDecoderConfig;
    image: Quantised;
    boxes: number[];
    masks: Encoded;
    iou: Encoded;
    keys: [string, number[]][];
  };
  sam_num_parameters: { prompt_encoder: number; mask_decoder: number };
}

const fx = readFixture<Fixture>('sam_decoder');
const dequant = (e: Quantised) =>
  tensor(
    e.q.map((v) => v * e.scale),
    e.shape,
  );

function expectCloseScaled(actual: ArrayLike<number>, expected: number[], what: string, tol = 1e-4): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectClose(actual, expected, what, tol * Math.max(scale, 1e-3), tol * 10);
}

/** The full-size weights: gen_sam_decoder.py's det_values, the same integers in doubles. */
function detValues(index: number, key: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const fan = shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = 2 * (((i * 48271 + (index + 1) * 7919) % 65521) / 65521) - 1;
    out[i] =
      shape.length === 1
        ? key.endsWith('weight')
          ? 1 + 0.2 * s
          : 0.1 * s
        : /gaussian|embed|token/.test(key)
          ? s
          : s / Math.sqrt(fan);
  }
  return out;
}

function prompts(c: Case) {
  const points = { coords: tensor(c.points, c.points_shape), labels: tensor(c.labels, c.points_shape.slice(0, 2)) };
  return {
    points,
    boxes: c.boxes ? tensor(c.boxes, [c.boxes.length / 4, 4]) : null,
    masks: c.mask_input ? dequant(c.mask_input) : null,
  };
}

describe('SAM decoder structure', () => {
  it("state_dict keys, order and shapes at SAM's size equal segment-anything's; 4.06M parameters", () => {
    const model = new SamPromptDecoder(SAM_DECODER.sam);
    const keys = [...model.stateDict()].map(([k, t]) => [k, [...t.shape]]);
    expect(keys).toEqual(fx.full.keys);
    const { prompt_encoder: pe, mask_decoder: md } = fx.sam_num_parameters;
    expect(model.prompt_encoder.numParameters()).toBe(pe);
    expect(model.mask_decoder.numParameters()).toBe(md);
    expect(model.numParameters()).toBe(pe + md);
    expect(Math.round(model.numParameters() / 1e4) / 100).toBe(4.06);
    model.dispose();
  });

  it('CPU preset (spec §4 SAM-decoder-µ): [32, 8, 8] -> 32² masks; 16-d self-, 8-d cross-attention', async () => {
    const model = new SamPromptDecoder(SAM_DECODER.mu);
    const layer = model.mask_decoder.transformer.layers.at(0);
    expect([
      layer.self_attn.headDim,
      layer.cross_attn_token_to_image.internalDim,
      layer.cross_attn_token_to_image.headDim,
    ]).toEqual([16, 16, 8]);
    model.eval();
    const shapes = noGrad(() =>
      tidy(() => {
        const img = tensor(randomArray(32 * 64, 3), [1, 32, 8, 8]);
        const boxes = tensor([4, 6, 40, 50, 10, 10, 20, 30, 0, 0, 63, 63], [3, 4]);
        const multi = model.forward(img, { boxes }, true),
          single = model.forward(img, { boxes }, false);
        return [multi.masks, multi.iou, single.masks, single.iou].map((t) => [...t.shape]);
      }),
    );
    expect(shapes).toEqual([
      [3, 3, 32, 32],
      [3, 3],
      [3, 1, 32, 32],
      [3, 1],
    ]);
    model.dispose();
  });

  it('the neck sits under image_encoder.neck.* (1x1 and 3x3 convs without bias, LayerNorm2d)', () => {
    const model = new SamPromptDecoder(SAM_DECODER.mu, { neckInChans: 24 });
    const neck = [...model.stateDict()]
      .filter(([k]) => k.startsWith('image_encoder.'))
      .map(([k, t]) => [k, [...t.shape]]);
    expect(neck).toEqual([
      ['image_encoder.neck.0.weight', [32, 24, 1, 1]],
      ['image_encoder.neck.1.weight', [32]],
      ['image_encoder.neck.1.bias', [32]],
      ['image_encoder.neck.2.weight', [32, 32, 3, 3]],
      ['image_encoder.neck.3.weight', [32]],
      ['image_encoder.neck.3.bias', [32]],
    ]);
    model.dispose();
  });
});

describe('SAM decoder against PyTorch (reduced config: points, box, mask prompts; every gradient)', () => {
  const r = fx.reduced;
  let model: SamPromptDecoder;
  const outs: Record<string, { sparse: Tensor; dense: Tensor; masks: Tensor; iou: Tensor }> = {};
  let densePe: Tensor;
  let baseline: number;

  beforeAll(() => {
    baseline = device().liveBuffers;
    model = new SamPromptDecoder(r.config);
    const state = new Map(Object.entries(r.state_dict).map(([k, e]) => [k, dequant(e)]));
    model.loadStateDict(state);
    for (const t of state.values()) t.dispose();
    tidy(() => {
      let total: Tensor | null = null;
      for (const name of ['a', 'b'] as const) {
        const c = r.cases[name];
        const p = prompts(c);
        const { sparse, dense } = model.prompt_encoder.forward(p.points, p.boxes, p.masks);
        const { masks, iou } = model.mask_decoder.predictMasks(
          dequant(c.image),
          model.prompt_encoder.getDensePe(),
          sparse,
          dense,
        );
        const term = add(sum(mul(masks, dequant(c.cot_masks))), sum(mul(iou, dequant(c.cot_iou))));
        total = total ? add(total, term) : term;
        outs[name] = { sparse: sparse.keep(), dense: dense.keep(), masks: masks.keep(), iou: iou.keep() };
      }
      backward(total!);
    });
    densePe = noGrad(() => tidy(() => model.prompt_encoder.getDensePe()));
  });

  afterAll(() => {
    for (const o of Object.values(outs)) for (const t of Object.values(o)) t.dispose();
    densePe.dispose();
    model.dispose();
  });

  it('keys and shapes equal the reference state_dict', () => {
    expect([...model.stateDict()].map(([k, t]) => [k, [...t.shape]])).toEqual(
      Object.entries(r.state_dict).map(([k, e]) => [k, e.shape]),
    );
    expect(model.numParameters()).toBe(r.num_parameters);
  });

  it('dense positional encoding (random Fourier features of the 4 x 5 grid)', async () => {
    expect([...densePe.shape]).toEqual(r.dense_pe.shape);
    expectCloseScaled(await densePe.data(), r.dense_pe.data, 'dense PE');
  });

  for (const name of ['a', 'b'] as const) {
    it(`case ${name}: sparse and dense prompt embeddings, all 4 masks and IoU predictions`, async () => {
      const c = r.cases[name],
        o = outs[name];
      for (const k of ['sparse', 'dense', 'masks', 'iou'] as const) {
        expect([...o[k].shape], k).toEqual(c[k].shape);
        expectCloseScaled(await o[k].data(), c[k].data, `case ${name} ${k}`);
      }
    });
  }

  it('every parameter gradient', async () => {
    const named = model.namedParameters();
    expect(named.map(([k]) => k)).toEqual(Object.keys(r.grads));
    for (const [k, p] of named) {
      expect(p.grad, `${k}: gradient missing`).not.toBeNull();
      // softmax ignores a bias added to every key, so k_proj.bias has a zero gradient: f32 leaves
      // ~1e-7 of rounding there.
      if (k.endsWith('k_proj.bias')) expectClose(await p.grad!.data(), r.grads[k].data, `grad ${k}`, 1e-5, 0);
      else expectCloseScaled(await p.grad!.data(), r.grads[k].data, `grad ${k}`);
    }
  });

  it(
    'multimask output: tokens 1..3, single: token 0; post-processing (up, crop, resize) as ' + 'Sam.postprocess_masks',
    async () => {
      const o = outs.b;
      const multi = selectMasks(o.masks, o.iou, true),
        single = selectMasks(o.masks, o.iou, false);
      expect([...multi.masks.shape]).toEqual([2, 3, 16, 20]);
      expect([...single.iou.shape]).toEqual([2, 1]);
      const all = await o.iou.data();
      expect(Array.from(await multi.iou.data())).toEqual([all[1], all[2], all[3], all[5], all[6], all[7]]);
      expect(Array.from(await single.iou.data())).toEqual([all[0], all[4]]);
      const post = noGrad(() =>
        tidy(() => postprocessMasks(single.masks, r.config.inputImageSize, [60, 80], [45, 60])),
      );
      expectCloseScaled(await post.data(), r.cases.b.postprocessed!.data, 'postprocessed');
      for (const t of [multi.masks, multi.iou, single.masks, single.iou, post]) t.dispose();
    },
  );

  it("one image embedding per prompt ([B, C, h, w]) equals SAM's repeated [1, C, h, w]", async () => {
    const c = r.cases.b;
    const [a, b] = noGrad(() =>
      tidy(() => {
        const p = prompts(c);
        const img = dequant(c.image);
        const one = model.predictAll(img, p).masks;
        const two = model.predictAll(expand(img, [2, ...img.shape.slice(1)]), p).masks;
        return [one, two];
      }),
    );
    expectClose(await b.data(), await a.data(), 'per-prompt embeddings', 1e-6, 1e-6);
    a.dispose();
    b.dispose();
  });

  it('frees every intermediate', () => {
    expect(device().liveBuffers - baseline).toBe(model.stateDict().size + model.parameters().length + 8 + 1);
  });
});

describe("SAM decoder at SAM's dimensions (256-d, 8 heads, MLP 2048; 8 x 8 grid)", () => {
  it('one box prompt: all 4 masks and IoU predictions equal the reference', async () => {
    const f = fx.full;
    const model = new SamPromptDecoder(f.config);
    const state = new Map([...model.stateDict()].map(([k, t], i) => [k, tensor(detValues(i, k, t.shape), t.shape)]));
    model.loadStateDict(state);
    for (const t of state.values()) t.dispose();
    model.eval();
    const { masks, iou } = noGrad(() =>
      tidy(() => model.predictAll(dequant(f.image), { boxes: tensor(f.boxes, [1, 4]) })),
    );
    expect([...masks.shape]).toEqual(f.masks.shape);
    expectCloseScaled(await masks.data(), f.masks.data, 'full-size masks', 2e-4);
    expectCloseScaled(await iou.data(), f.iou.data, 'full-size IoU', 2e-4);
    masks.dispose();
    iou.dispose();
    model.dispose();
  });
});

describe("fused attention at the decoder's shapes (8 heads of 16 channels)", () => {
  // token->image: 7 queries over the image tokens; image->token: the reverse. Forward and every
  // input gradient of the fused kernels against the matmul/softmax reference.
  for (const [lq, lk] of [
    [7, 256],
    [256, 7],
  ]) {
    it(`Lq ${lq}, Lk ${lk}, D 16`, async () => {
      const shapes = [
        [2, 8, lq, 16],
        [2, 8, lk, 16],
        [2, 8, lk, 16],
      ];
      const run = (fn: typeof scaledDotProductAttention) =>
        tidy(() => {
          const [q, k, v] = shapes.map((s, i) =>
            requiresGrad(
              tensor(
                randomArray(
                  s.reduce((a, b) => a * b, 1),
                  11 + i,
                ),
                s,
              ),
            ),
          );
          const o = fn(q, k, v);
          backward(sum(mul(o, tensor(randomArray(o.size, 17), o.shape))));
          return [o, q.grad!, k.grad!, v.grad!].map((t) => t.keep());
        });
      const fused = run(scaledDotProductAttention),
        ref = run(attentionReference);
      for (let i = 0; i < 4; i++)
        expectClose(await fused[i].data(), await ref[i].data(), ['out', 'dq', 'dk', 'dv'][i], 3e-5, 1e-3);
      for (const t of [...fused, ...ref]) t.dispose();
    });
  }
});
