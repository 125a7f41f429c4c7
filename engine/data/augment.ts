// Batch augmentation on the GPU, applied identically to images and their masks. Parameters are
// drawn on the host per sample from a seeded Rng (so a run reproduces and an image and its
// mask always get the same geometry), then three kernels apply them: a separable Gaussian blur
// (augment-blur.wgsl), one geometric warp combining flips, rot90, random resized crop, resize
// and grid distortion (augment-warp.wgsl: bilinear for images, nearest for masks), and colour
// jitter + normalisation (augment-color.wgsl).
// Reference for the transforms and their parameter ranges: albumentations (HorizontalFlip,
// VerticalFlip, RandomRotate90, GaussianBlur, RandomResizedCrop, GridDistortion, ColorJitter,
// Normalize) and torchvision (RandomResizedCrop's sampling, ColorJitter's blends), as used by
// EndoExtend24's fine-tuning recipe (spec §1.3).
// Deviations, documented: the colour jitter order is fixed (brightness, contrast, saturation,
// hue) where albumentations shuffles it; contrast blends with the grey mean of the input image
// times the brightness factor; grid-distortion cells are renormalised to span the image exactly.
import { Tensor, fmt, noGrad } from '../tensor.ts';
import { augmentBlur, augmentWarp, augmentColor } from '../ops/augment.ts';
import { mean, sum, mul, tensor } from '../ops/index.ts';
import { Rng } from './random.ts';

export interface AugmentConfig {
  /** Output [height, width] (the Resize step). */
  size: [number, number];
  hflip?: number;
  vflip?: number;
  /** Probability of rotating by a random multiple of 90 degrees (k in 1..3). */
  rot90?: number;
  randomResizedCrop?: { p?: number; scale: [number, number]; ratio: [number, number] };
  gridDistortion?: { p: number; steps: number; limit: number };
  colorJitter?: { p: number; brightness: number; contrast: number; saturation: number; hue: number };
  /** Odd kernel sizes in [min, max]; sigma uniform in [sigma[0], sigma[1]] (0 = from the size). */
  gaussianBlur?: { p: number; kernel: [number, number]; sigma: [number, number] };
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
}

/** The paper's training augmentations (spec §1.3) at a given size. */
export function endoExtendTrainAugment(size: number): AugmentConfig {
  return {
    size: [size, size],
    hflip: 0.5,
    vflip: 0.5,
    rot90: 0.5,
    gaussianBlur: { p: 0.5, kernel: [3, 7], sigma: [0, 2.55] },
    randomResizedCrop: { p: 1, scale: [0.5, 1], ratio: [1, 1] },
    gridDistortion: { p: 0.5, steps: 3, limit: 0.09 },
    colorJitter: { p: 0.5, brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.05 },
    normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  };
}

export type Affine2x3 = [number, number, number, number, number, number]; // rows of a 2x3 affine map

export function composeAffine(a: Affine2x3, b: Affine2x3): Affine2x3 {
  // (a ∘ b)(p) = a(b(p))
  return [
    a[0] * b[0] + a[1] * b[3],
    a[0] * b[1] + a[1] * b[4],
    a[0] * b[2] + a[1] * b[5] + a[2],
    a[3] * b[0] + a[4] * b[3],
    a[3] * b[1] + a[4] * b[4],
    a[3] * b[2] + a[4] * b[5] + a[5],
  ];
}

const IDENTITY: Affine2x3 = [1, 0, 0, 0, 1, 0];

/** Per-sample parameters, drawn once and shared by an image and its mask. */
export interface SampleParams {
  affine: Affine2x3;
  xs: number[];
  ys: number[];
  color: [number, number, number, number];
  blur: [number, number];
}

export function sampleParams(cfg: AugmentConfig, inH: number, inW: number, rng: Rng): SampleParams {
  // Maps are built from output back to input: out -> crop -> rot90 -> vflip -> hflip -> input.
  let toInput: Affine2x3 = IDENTITY;
  if (rng.bool(cfg.hflip ?? 0)) toInput = composeAffine(toInput, [-1, 0, 1, 0, 1, 0]);
  if (rng.bool(cfg.vflip ?? 0)) toInput = composeAffine(toInput, [1, 0, 0, 0, -1, 1]);
  let [h, w] = [inH, inW];
  if (rng.bool(cfg.rot90 ?? 0)) {
    const k = rng.randint(1, 3);
    // np.rot90 once (counter-clockwise): out(u, v) reads in(1 - v, u) in normalised coordinates.
    for (let i = 0; i < k; i++) {
      toInput = composeAffine(toInput, [0, -1, 1, 1, 0, 0]);
      [h, w] = [w, h];
    }
  }
  const rrc = cfg.randomResizedCrop;
  if (rrc && rng.bool(rrc.p ?? 1)) {
    const [x0, y0, cw, ch] = resizedCropBox(h, w, rrc.scale, rrc.ratio, rng);
    toInput = composeAffine(toInput, [cw / w, 0, x0 / w, 0, ch / h, y0 / h]);
  }
  const gd = cfg.gridDistortion;
  const steps = gd?.steps ?? 1;
  const cells = (distort: boolean) => {
    const widths = Array.from({ length: steps }, () => (distort ? 1 + rng.uniform(-gd!.limit, gd!.limit) : 1));
    const total = widths.reduce((a, b) => a + b, 0);
    const out = [0];
    for (const wd of widths) out.push(out[out.length - 1] + wd / total);
    out[steps] = 1;
    return out;
  };
  const doGrid = gd ? rng.bool(gd.p) : false;
  const xs = cells(doGrid);
  const ys = cells(doGrid);
  const cj = cfg.colorJitter;
  let color: [number, number, number, number] = [1, 1, 1, 0];
  if (cj && rng.bool(cj.p)) {
    const f = (x: number) => rng.uniform(Math.max(0, 1 - x), 1 + x);
    color = [f(cj.brightness), f(cj.contrast), f(cj.saturation), rng.uniform(-cj.hue, cj.hue)];
  }
  let blur: [number, number] = [0, 0];
  const gb = cfg.gaussianBlur;
  if (gb && rng.bool(gb.p)) {
    const sizes: number[] = [];
    for (let k = gb.kernel[0]; k <= gb.kernel[1]; k++) if (k % 2 === 1) sizes.push(k);
    const k = rng.pick(sizes);
    let sigma = rng.uniform(gb.sigma[0], gb.sigma[1]);
    if (sigma < 1e-3) sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8; // OpenCV's sigma for a given size
    blur = [sigma, (k - 1) / 2];
  }
  return { affine: toInput, xs, ys, color, blur };
}

/** torchvision's RandomResizedCrop box [x0, y0, w, h] in pixels (10 tries, then a centre crop). */
function resizedCropBox(
  h: number,
  w: number,
  scale: [number, number],
  ratio: [number, number],
  rng: Rng,
): [number, number, number, number] {
  const area = h * w;
  const [lr0, lr1] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let t = 0; t < 10; t++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const ar = Math.exp(rng.uniform(lr0, lr1));
    const cw = Math.round(Math.sqrt(target * ar));
    const ch = Math.round(Math.sqrt(target / ar));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) return [rng.randint(0, w - cw), rng.randint(0, h - ch), cw, ch];
  }
  const r = w / h;
  const [cw, ch] = r < ratio[0] ? [w, Math.round(w / ratio[0])] : r > ratio[1] ? [Math.round(h * ratio[1]), h] : [w, h];
  return [Math.floor((w - cw) / 2), Math.floor((h - ch) / 2), cw, ch];
}

/**
 * Augments a batch: images [B, 3, H, W] in [0, 1] (and optionally masks [B, 1, H, W] in {0, 1})
 * -> images [B, 3, size] (normalised if configured) and masks [B, 1, size] still in {0, 1}.
 * `params` may be given (e.g. to replay a batch); otherwise drawn from `rng`.
 */
export function augmentBatch(
  images: Tensor,
  masks: Tensor | null,
  cfg: AugmentConfig,
  rng: Rng,
  params?: SampleParams[],
): { images: Tensor; masks: Tensor | null; params: SampleParams[] } {
  if (images.ndim !== 4 || images.shape[1] !== 3)
    throw new Error(`augmentBatch: images must be [B, 3, H, W], got ${fmt(images.shape)}`);
  const [b, , h, w] = images.shape;
  if (masks && (masks.ndim !== 4 || masks.shape[0] !== b || masks.shape[2] !== h || masks.shape[3] !== w)) {
    throw new Error(
      `augmentBatch: masks ${fmt(masks.shape)} do not match images ${fmt(images.shape)} (expected ` +
        `[${b}, C, ${h}, ${w}])`,
    );
  }
  const ps = params ?? Array.from({ length: b }, () => sampleParams(cfg, h, w, rng));
  const steps = ps[0].xs.length - 1;
  return noGrad(() => {
    const geo = tensor(
      ps.flatMap((p) => [...p.affine, ...p.xs, ...p.ys]),
      [b, 8 + 2 * steps],
    );
    let img = images;
    if (ps.some((p) => p.blur[1] > 0)) {
      const bp = tensor(
        ps.flatMap((p) => p.blur),
        [b, 2],
      );
      for (const dir of [0, 1] as const) {
        const o = augmentBlur(img, bp, dir);
        if (img !== images) img.dispose();
        img = o;
      }
      bp.dispose();
    }
    const warped = augmentWarp(img, geo, steps, cfg.size, 0);
    if (img !== images) img.dispose();
    const outMasks = masks ? augmentWarp(masks, geo, steps, cfg.size, 1) : null;
    geo.dispose();
    const nm = cfg.normalize ?? { mean: [0, 0, 0], std: [1, 1, 1] };
    const cp = tensor(
      ps.flatMap((p) => p.color),
      [b, 4],
    );
    // Grey mean per image (for contrast): [B, 3, H, W] -> [B, 3] -> [B].
    const chMean = mean(warped, [2, 3]);
    const greyW = tensor([0.299, 0.587, 0.114], [3]);
    const weighted = mul(chMean, greyW);
    const greyMean = sum(weighted, 1);
    const out = augmentColor(warped, cp, greyMean, nm.mean, nm.std);
    for (const t of [warped, cp, chMean, greyW, weighted, greyMean]) t.dispose();
    return { images: out, masks: outMasks, params: ps };
  });
}
