// Pieces of EndoKED stage 4 (04-sam-pseudo-masks.ts) that are not the loop itself: the frozen
// image side (a PVTv2 backbone whose multi-scale maps are cached once per image), SAM's training
// losses, boxes from masks and SAM's box noise.
// - Image side: PVTv2-µ from a Polyp-PVT-µ segmenter (05-segmenter.ts weights; its backbone only).
//   Features = [x2, up(x3), up(x4)] at stride 8 (bilinear), so a size-S frame gives
//   [32 + 64 + 128 = 224, S/8, S/8]; SAM's neck (trainable, in the decoder model) maps them to the
//   decoder's width. Frames go in as [0, 1] RGB resized to S x S, as the segmenter saw them; the
//   decoder for frames of size S is SAM-decoder-µ on that S/8 grid (decoderConfig).
// - Losses (Kirillov et al. 2023, arXiv 2304.02643, §A "Training algorithm"): focal (alpha 0.25,
//   gamma 2, detectron2's sigmoid_focal_loss) and Dice on sigmoid probabilities, 20:1, per sample
//   and mask token; the IoU head regresses the IoU of each thresholded mask with MSE.
// - Box noise: each coordinate moves by N(0, (10% of the box side)²), at most 20 pixels (SAM §A).
import {
  add,
  sub,
  mul,
  div,
  sum,
  mean,
  sigmoid,
  softplus,
  pow,
  gt,
  noGrad,
  tidy,
  tensor,
  parseSafetensors,
  serializeSafetensors,
  loadWeights,
  type Tensor,
  Rng,
} from '../../engine/index.ts';
import { imagesToChw, type MaskImage, type RgbImage } from '../../engine/data/index.ts';
import { polypPvt, backboneFeaturesOf, type PolypPVT } from '../../models/polyp-pvt.ts';
import { SAM_DECODER, type SamDecoderConfig } from '../../models/sam-decoder.ts';

/** The decoder for frames of size S: SAM-decoder-µ's widths (spec §4) on an S/8 grid. */
export function decoderConfig(size: number): SamDecoderConfig {
  return { ...SAM_DECODER.mu, imageEmbeddingSize: [size / 8, size / 8], inputImageSize: [size, size] };
}

/** Polyp-PVT-µ with the segmenter's weights ('random': seeded initial weights, for tests only). Eval mode, frozen. */
export function loadBackbone(weights: Uint8Array | 'random', source: string): PolypPVT {
  const model = polypPvt('mu');
  if (weights !== 'random') loadWeights(model, weights, { source });
  model.eval();
  model.requiresGrad_(false);
  return model;
}

/** Frames (S x S, RGB) -> features [B, 224, S/8, S/8] on the device. */
export function backboneFeatureTensor(model: PolypPVT, frames: readonly RgbImage[]): Tensor {
  const { data, shape } = imagesToChw(frames);
  return backboneFeaturesOf(model, tensor(data, shape));
}

/** Frames (S x S, RGB) -> cached features [B, 224, S/8, S/8] on the host. */
export async function backboneFeatures(model: PolypPVT, frames: readonly RgbImage[]): Promise<Float32Array> {
  const f = backboneFeatureTensor(model, frames);
  const out = Float32Array.from(await f.data());
  f.dispose();
  return out;
}

export interface FeatureCache {
  features: Float32Array;
  shape: [number, number, number, number];
  meta: Record<string, string>;
}

export function featureCacheBytes(c: FeatureCache): Uint8Array {
  return serializeSafetensors({ features: { dtype: 'F32', shape: [...c.shape], data: c.features } }, c.meta);
}

/** The cache, or null when it is missing or was written for other inputs (`meta` differs). */
export function readFeatureCache(bytes: Uint8Array | null, meta: Record<string, string>): FeatureCache | null {
  if (!bytes) return null;
  const p = parseSafetensors(bytes);
  const m = p.metadata ?? {};
  if (Object.entries(meta).some(([k, v]) => m[k] !== v)) return null;
  const t = p.tensors.features;
  return { features: t.data as Float32Array, shape: t.shape as [number, number, number, number], meta: m };
}

/**
 * Per-sample, per-mask loss [B, T]: 20 focal + 1 Dice. logits [B, T, H, W], target [B, 1, H, W] in {0, 1}.
 * Focal: mean over pixels of alpha_t (1 - p_t)^2 BCE; Dice: 1 - (2 sum(p t) + 1) / (sum p + sum t + 1).
 */
export function samMaskLoss(
  logits: Tensor,
  target: Tensor,
  focalWeight = 20,
  diceWeight = 1,
  alpha = 0.25,
  gamma = 2,
): Tensor {
  const p = sigmoid(logits);
  const ce = sub(softplus(logits), mul(logits, target)); // BCE with logits, stable
  const pt = add(mul(p, target), mul(sub(1, p), sub(1, target)));
  const at = add(mul(target, alpha), mul(sub(1, target), 1 - alpha));
  const focal = mean(mul(mul(ce, pow(sub(1, pt), gamma)), at), [2, 3]); // [B, T]
  const inter = sum(mul(p, target), [2, 3]);
  const dice = sub(1, div(add(mul(inter, 2), 1), add(add(sum(p, [2, 3]), sum(target, [2, 3])), 1)));
  return add(mul(focal, focalWeight), mul(dice, diceWeight));
}

/** IoU of each thresholded mask (logits > 0) with the target: [B, T], no gradient. */
export function maskIou(logits: Tensor, target: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const pred = gt(logits, 0);
      const inter = sum(mul(pred, target), [2, 3]);
      const union = sub(add(sum(pred, [2, 3]), sum(target, [2, 3])), inter);
      return div(inter, add(union, 1e-6));
    }),
  );
}

export type Box = [number, number, number, number];

/** 8-connected components of a binary mask, as masks with their boxes [x0, y0, x1, y1) and areas. */
export function components(mask: MaskImage): { box: Box; area: number; pixels: Int32Array }[] {
  const { width: w, height: h, data } = mask;
  const label = new Int32Array(w * h).fill(-1);
  const out: { box: Box; area: number; pixels: Int32Array }[] = [];
  const stack: number[] = [];
  for (let s = 0; s < w * h; s++) {
    if (!data[s] || label[s] >= 0) continue;
    const id = out.length,
      px: number[] = [];
    let [x0, y0, x1, y1] = [w, h, 0, 0];
    label[s] = id;
    stack.push(s);
    while (stack.length) {
      const i = stack.pop()!,
        x = i % w,
        y = (i - x) / w;
      px.push(i);
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x + 1);
      y1 = Math.max(y1, y + 1);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx,
            ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const j = ny * w + nx;
          if (data[j] && label[j] < 0) {
            label[j] = id;
            stack.push(j);
          }
        }
    }
    out.push({ box: [x0, y0, x1, y1], area: px.length, pixels: Int32Array.from(px) });
  }
  return out;
}

/** SAM's box noise: each coordinate + N(0, (frac * side)²) clamped to ±maxPx, kept inside the image and non-empty. */
export function jitterBox(
  [x0, y0, x1, y1]: Box,
  rng: Rng,
  frac: number,
  maxPx: number,
  width: number,
  height: number,
): Box {
  if (frac <= 0) return [x0, y0, x1, y1];
  const n = (side: number) => Math.max(-maxPx, Math.min(maxPx, rng.normal(0, frac * side)));
  const [bw, bh] = [x1 - x0, y1 - y0];
  let [a, b, c, d] = [x0 + n(bw), y0 + n(bh), x1 + n(bw), y1 + n(bh)];
  a = Math.max(0, Math.min(width - 1, a));
  b = Math.max(0, Math.min(height - 1, b));
  c = Math.max(a + 1, Math.min(width, c));
  d = Math.max(b + 1, Math.min(height, d));
  return [a, b, c, d];
}

/** A box filled as a mask (the "box as the mask" baseline). */
export function boxMask(
  [x0, y0, x1, y1]: Box,
  width: number,
  height: number,
  into = new Uint8Array(width * height),
): Uint8Array {
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.ceil(y1)); y++)
    into.fill(1, y * width + Math.max(0, Math.floor(x0)), y * width + Math.min(width, Math.ceil(x1)));
  return into;
}

/** Dice of two binary masks (1 when both are empty). */
export function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 0,
    sa = 0,
    sb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ? 1 : 0,
      y = b[i] ? 1 : 0;
    inter += x & y;
    sa += x;
    sb += y;
  }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}
