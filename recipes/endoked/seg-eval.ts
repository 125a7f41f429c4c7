// Test evaluation of the segmenter recipe (05-segmenter.ts, spec §2.5; [K] zwyang6/ENDOKED
// EndoKED_SEG/Test.py = DengPingFan/Polyp-PVT), also the prediction 06-refine.ts re-labels with:
// each image resized to the training size, sigmoid(P1 + P2) upsampled bilinearly
// (align_corners=False) to the image's or mask's own size; Dice and IoU per image, binarised at
// the threshold, raw and after Test.py's min-max normalisation; overlays of a few test images.
// A map over maxStorageBufferBindingSize / 4 pixels (about 33.5 Mpx on most adapters) cannot be
// one f32 tensor, so the logits at the training size are upsampled on the CPU instead, with the
// same bilinear interpolation as the device path (PyTorch's F.interpolate, mode 'bilinear',
// align_corners=False: source coordinate (x + 0.5) * in / out - 0.5, clamped at 0), then the
// sigmoid.
import { join } from 'node:path';
import { tidy, noGrad, tensor, add, sigmoid, narrow, imagesToChw, interpolate } from '../../engine/index.ts';
import { diceIou } from '../../engine/metrics/index.ts';
import type { MaskImage, RgbImage } from '../../engine/data/index.ts';
import type { PolypPVT } from '../../models/polyp-pvt.ts';
import type { ImageRecord } from '../../runtime-node/datasets.ts';
import { loadSegSample, type SegSample } from '../../runtime-node/seg-samples.ts';
import { maskContour, resizeImage, writePng } from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';

/** The largest map (in pixels) the device path may produce, from the adapter's limits. */
export function maxDevicePixels(limits: { maxStorageBufferBindingSize: number }): number {
  return Math.floor(limits.maxStorageBufferBindingSize / 4);
}

/** Bilinear resize (align_corners=False) of one [inH, inW] map to [outH, outW]. */
export function upsampleBilinear(
  src: Float32Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
): Float32Array {
  if (src.length !== inH * inW)
    throw new Error(`upsampleBilinear: ${inH}x${inW} needs ${inH * inW} values, got ${src.length}`);
  const axis = (outN: number, inN: number) => {
    const i0 = new Int32Array(outN),
      i1 = new Int32Array(outN),
      t = new Float32Array(outN);
    for (let o = 0; o < outN; o++) {
      const s = Math.max(0, ((o + 0.5) * inN) / outN - 0.5);
      i0[o] = Math.min(inN - 1, Math.floor(s));
      i1[o] = Math.min(inN - 1, i0[o] + 1);
      t[o] = s - i0[o];
    }
    return { i0, i1, t };
  };
  const ys = axis(outH, inH),
    xs = axis(outW, inW);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] * inW,
      r1 = ys.i1[y] * inW,
      ty = ys.t[y];
    for (let x = 0; x < outW; x++) {
      const a = xs.i0[x],
        b = xs.i1[x],
        tx = xs.t[x];
      const top = src[r0 + a] + (src[r0 + b] - src[r0 + a]) * tx;
      const bottom = src[r1 + a] + (src[r1 + b] - src[r1 + a]) * tx;
      out[y * outW + x] = top + (bottom - top) * ty;
    }
  }
  return out;
}

/**
 * sigmoid(P1 + P2) of a batch of images at the model's input size `size`, each upsampled to its
 * own [height, width] and read back. A map over `maxPixels` is upsampled on the CPU from the
 * logits at `size` instead (the same bilinear, align_corners=False).
 */
export async function predictProbs(
  model: PolypPVT,
  inputs: RgbImage[],
  sizes: [number, number][],
  size: number,
  maxPixels: number,
): Promise<Float32Array[]> {
  const maps = noGrad(() =>
    tidy(() => {
      const [p1, p2] = model.forward(tensor(imagesToChw(inputs).data, [inputs.length, 3, size, size]));
      const logits = add(p1, p2); // [B, 1, S, S], upsampled per image before the sigmoid (as the reference)
      return sizes.map(([h, w], i) =>
        h * w > maxPixels
          ? narrow(logits, 0, i, 1)
          : sigmoid(interpolate(narrow(logits, 0, i, 1), { size: [h, w], mode: 'bilinear', alignCorners: false })),
      );
    }),
  );
  const out: Float32Array[] = [];
  for (const [i, m] of maps.entries()) {
    const [h, w] = sizes[i];
    let p: Float32Array = Float32Array.from(await m.data());
    m.dispose();
    if (h * w > maxPixels) {
      // logits at `size`: upsample, then sigmoid
      p = upsampleBilinear(p, size, size, h, w);
      for (let k = 0; k < p.length; k++) p[k] = 1 / (1 + Math.exp(-p[k]));
    }
    out.push(p);
  }
  return out;
}

export interface ImageScore {
  id: string;
  dice: number;
  iou: number;
  diceMinMax: number;
  iouMinMax: number;
}

export interface TestOptions {
  /** The model's input size (square). */
  size: number;
  batch: number;
  threshold: number;
  /** Test images drawn as overlays, evenly spaced over the split. */
  numOverlays: number;
  overlayDir: string;
  maxPixels: number;
}

/** Dice / IoU of every test image at its mask's own resolution (the model in eval mode); overlays of a few. */
export async function evaluateTest(model: PolypPVT, test: ImageRecord[], o: TestOptions): Promise<ImageScore[]> {
  model.eval();
  const nOverlays = Math.min(o.numOverlays, test.length);
  const overlayAt = new Set(Array.from({ length: nOverlays }, (_, k) => Math.floor((k * test.length) / nOverlays)));
  const perImage: ImageScore[] = [];
  const bar = new Progress({ total: test.length, label: 'test ', unit: 'img' });
  for (let i = 0; i < test.length; i += o.batch) {
    const recs = test.slice(i, i + o.batch);
    let probs: Float32Array[], samples: SegSample[];
    try {
      samples = await Promise.all(recs.map((r) => loadSegSample(r))); // full size: the masks are scored there
      const inputs = await Promise.all(samples.map((s) => resizeImage(s.image, o.size, o.size)));
      probs = await predictProbs(
        model,
        inputs,
        samples.map((s) => [s.mask.height, s.mask.width]),
        o.size,
        o.maxPixels,
      );
    } catch (e) {
      throw new Error(
        `evaluating ${recs.map((r) => `${r.imagePath} (${r.id})`).join(', ')}: ` +
          `${e instanceof Error ? e.message : String(e)}`,
      );
    }
    for (let k = 0; k < recs.length; k++) {
      const p = probs[k],
        mask = samples[k].mask;
      let lo = Infinity,
        hi = -Infinity;
      for (const v of p) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const mm = p.map((v) => (v - lo) / (hi - lo + 1e-8)); // the reference Test.py's normalisation
      const a = diceIou(p, mask.data, o.threshold),
        b = diceIou(mm, mask.data, o.threshold);
      perImage.push({ id: recs[k].id, dice: a.dice, iou: a.iou, diceMinMax: b.dice, iouMinMax: b.iou });
      if (overlayAt.has(i + k))
        await writeOverlay(join(o.overlayDir, `${recs[k].id}.png`), samples[k].image, mask, p, o.threshold);
    }
    bar.tick(recs.length);
  }
  return perImage;
}

/** The image with the predicted mask tinted blue and the ground truth's contour in green, at most 512 px wide/high. */
async function writeOverlay(
  path: string,
  image: RgbImage,
  gt: MaskImage,
  prob: Float32Array,
  threshold: number,
): Promise<void> {
  const { width: w, height: h } = gt;
  if (image.width !== w || image.height !== h) image = await resizeImage(image, w, h);
  const TINT = [30, 110, 255]; // predicted-mask tint (blue shows on the red of colonoscopy frames)
  const t = Math.max(1, Math.round(Math.max(w, h) / 256)); // contour thickness
  const contour = await maskContour(gt, t);
  const out = new Uint8Array(image.data);
  for (let p = 0; p < w * h; p++) {
    const o = 3 * p;
    if (prob[p] > threshold) for (let c = 0; c < 3; c++) out[o + c] = Math.round(0.45 * out[o + c] + 0.55 * TINT[c]);
    if (contour[p]) {
      out[o] = 40;
      out[o + 1] = 230;
      out[o + 2] = 60;
    }
  }
  let img: RgbImage = { width: w, height: h, data: out };
  const scale = Math.min(1, 512 / Math.max(w, h));
  if (scale < 1) img = await resizeImage(img, Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale)));
  writePng(path, img);
}
