// The out-of-domain hint: how far an image is from the frames a model was trained on, by simple
// input statistics (each frame resized to 64² as the page resizes: mean R, G, B and the spread of
// its luma, 0-255), compared with the training frames' distribution of the same four numbers
// (their mean and standard deviation, stored in the model card by runtime-browser/input-stats.ts);
// and, for a classifier, by its own confidence. A z-score above 3 on any statistic, or a top
// probability under 0.6, says the answer should not be trusted. Cheap, coarse and one-sided: an
// image that passes can still be far from the training data in ways four numbers cannot see.
import { resizeToRgb, type RgbaImage } from './preprocess.ts';

export const FEATURES = ['mean red', 'mean green', 'mean blue', 'luma spread'] as const;
export const Z_LIMIT = 3;
export const CONFIDENCE_LIMIT = 0.6;

export interface InputStats {
  of: string;
  count: number;
  mean: number[];
  std: number[];
}

/** The four statistics of one frame, after the page's resize to 64². */
export function imageFeatures(img: RgbaImage): number[] {
  const rgb = resizeToRgb(img, 64, 64),
    n = 64 * 64;
  let r = 0,
    g = 0,
    b = 0,
    l = 0,
    l2 = 0;
  for (let i = 0; i < n; i++) {
    const R = rgb[3 * i],
      G = rgb[3 * i + 1],
      B = rgb[3 * i + 2],
      Y = 0.299 * R + 0.587 * G + 0.114 * B;
    r += R;
    g += G;
    b += B;
    l += Y;
    l2 += Y * Y;
  }
  const ml = l / n;
  return [r / n, g / n, b / n, Math.sqrt(Math.max(0, l2 / n - ml * ml))];
}

/** Mean and standard deviation of each statistic over a set of frames. */
export function statsOf(features: number[][], of: string): InputStats {
  const k = FEATURES.length,
    n = features.length;
  const mean = Array.from({ length: k }, (_, j) => features.reduce((a, f) => a + f[j], 0) / n);
  const std = Array.from({ length: k }, (_, j) =>
    Math.sqrt(features.reduce((a, f) => a + (f[j] - mean[j]) ** 2, 0) / Math.max(1, n - 1)),
  );
  return { of, count: n, mean, std };
}

export interface DomainCheck {
  z: number[];
  far: string[];
  lowConfidence: boolean;
  topProbability: number | null;
}

/** How the image compares with the training frames; `topProbability` for classifiers. */
export function domainCheck(img: RgbaImage, stats: InputStats | undefined, topProbability: number | null): DomainCheck {
  const f = imageFeatures(img);
  const z = stats ? f.map((v, j) => (v - stats.mean[j]) / (stats.std[j] || 1)) : [];
  const far = z.flatMap((v, j) =>
    Math.abs(v) > Z_LIMIT ? [`${FEATURES[j]} ${v > 0 ? '+' : ''}${v.toFixed(1)} sd`] : [],
  );
  return { z, far, lowConfidence: topProbability !== null && topProbability < CONFIDENCE_LIMIT, topProbability };
}
