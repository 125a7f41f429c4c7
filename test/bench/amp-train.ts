// Mixed-precision evidence: a µ EVA-02 (classification) or a µ Polyp-PVT (segmentation) trained
// on a fixed synthetic set, in f32 or under autocast + GradScaler, from the same seed and weights.
// Used by test/engine/amp-train.test.ts (few steps) and amp.bench.ts (`npm run bench amp`).
// Synthetic data (CPU, seeded): EVA-02 images are one of 10 class templates plus noise; Polyp-PVT
// images are a bright disc (the mask) on noise.
import { Tensor, tensor, tidy, backward, autocast, crossEntropy, manualSeed, Generator } from '../../engine/index.ts';
import { AdamW, GradScaler } from '../../engine/optim/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { polypPvt, polypPvtLoss } from '../../models/polyp-pvt.ts';

export type AmpModel = 'eva02' | 'polyp-pvt';

export interface AmpRunOptions {
  steps: number;
  size: number;
  batch: number;
  /** Distinct batches cycled through (a fixed training set). */
  batches?: number;
  /** Scales each input pixel by 1 +- perturb (random signs): an f32 control perturbed at f16's rounding size. */
  perturb?: number;
  /** Called after each step (progress lines in the benchmark). */
  onStep?: (step: number, loss: number) => void;
}

export interface AmpRun {
  losses: number[];
  /** Median wall time of a step (forward, backward, optimizer, one loss readback), warm-up excluded. */
  msPerStep: number;
  skipped: number;
  finalScale: number;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Each value times 1 +- p, signs from their own stream (the data stream is left as it was). */
function jitter(img: Float32Array, p: number): void {
  const r = lcg(99);
  for (let i = 0; i < img.length; i++) img[i] *= r() < 0.5 ? 1 - p : 1 + p;
}

interface Data {
  x: Tensor;
  y: Tensor;
}

function syntheticData(kind: AmpModel, o: AmpRunOptions): Data[] {
  const r = lcg(1234);
  const s = o.size,
    px = 3 * s * s;
  const templates = Array.from({ length: 10 }, () => Float32Array.from({ length: px }, () => r() * 2 - 1));
  return Array.from({ length: o.batches ?? 8 }, () => {
    const img = new Float32Array(o.batch * px);
    if (kind === 'eva02') {
      const labels = Array.from({ length: o.batch }, () => Math.floor(r() * 10));
      labels.forEach((c, b) => {
        for (let i = 0; i < px; i++) img[b * px + i] = templates[c][i] + (r() * 2 - 1);
      });
      if (o.perturb) jitter(img, o.perturb);
      return { x: tensor(img, [o.batch, 3, s, s]).keep(), y: tensor(labels, [o.batch], 'i32').keep() };
    }
    const mask = new Float32Array(o.batch * s * s);
    for (let b = 0; b < o.batch; b++) {
      const [cy, cx, rad] = [r() * s, r() * s, s * (0.15 + 0.2 * r())];
      for (let i = 0; i < s; i++)
        for (let j = 0; j < s; j++) {
          const m = (i - cy) ** 2 + (j - cx) ** 2 < rad * rad ? 1 : 0;
          mask[(b * s + i) * s + j] = m;
          for (let c = 0; c < 3; c++) img[((b * 3 + c) * s + i) * s + j] = 0.3 + 0.4 * m + 0.3 * (r() - 0.5);
        }
    }
    if (o.perturb) jitter(img, o.perturb);
    return { x: tensor(img, [o.batch, 3, s, s]).keep(), y: tensor(mask, [o.batch, 1, s, s]).keep() };
  });
}

/** Trains one model from seed 0; amp = autocast forward + dynamic loss scaling. */
export async function trainMu(kind: AmpModel, amp: boolean, o: AmpRunOptions): Promise<AmpRun> {
  manualSeed(0);
  const model =
    kind === 'eva02'
      ? new Eva02(eva02Config('mu', { imgSize: o.size }), { generator: new Generator(0) })
      : polypPvt('mu');
  model.flattenParameters();
  const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.05 });
  const scaler = new GradScaler({ enabled: amp });
  const data = syntheticData(kind, o);
  const lossOf = (d: Data): Tensor =>
    model instanceof Eva02 ? crossEntropy(model.forward(d.x), d.y) : polypPvtLoss(model.forward(d.x), d.y);
  const losses: number[] = [],
    times: number[] = [];
  try {
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      const d = data[i % data.length];
      const loss = tidy(() => {
        const l = autocast(() => lossOf(d), { enabled: amp });
        backward(scaler.scale(l));
        return l;
      });
      const v = await loss.item();
      loss.dispose();
      if (!Number.isFinite(v)) throw new Error(`${kind} ${amp ? 'amp' : 'f32'}: loss ${v} at step ${i}`);
      await scaler.step(opt);
      scaler.update();
      opt.zeroGrad();
      losses.push(v);
      times.push(performance.now() - t0);
      o.onStep?.(i, v);
    }
  } finally {
    for (const d of data) for (const t of [d.x, d.y]) t.dispose();
    opt.dispose();
    model.dispose();
  }
  const warm = times.slice(Math.min(3, times.length - 1)).sort((a, b) => a - b);
  return {
    losses,
    msPerStep: warm[Math.floor(warm.length / 2)],
    skipped: scaler.skippedSteps,
    finalScale: scaler.getScale(),
  };
}

/** mean over the last `n` steps of |loss_amp - loss_f32| / loss_f32. */
export function meanRelDiff(f32: number[], amp: number[], n: number): number {
  const k = Math.min(n, f32.length);
  let s = 0;
  for (let i = f32.length - k; i < f32.length; i++) s += Math.abs(amp[i] - f32[i]) / Math.abs(f32[i]);
  return s / k;
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
