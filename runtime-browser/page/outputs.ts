// What a user takes away from a result: the mask as a PNG at the image's own resolution, the
// overlay as shown, the numbers as JSON; the threshold and overlay opacity; and, for a mask, a
// ground-truth mask file scored with Dice and IoU the way recipes/endoked/05-segmenter.ts scores
// its test set (the probability map upsampled bilinearly to the mask's size, > threshold; the
// truth > 0.5 of white; engine metrics diceIou). Pure helpers first (Node tests run them), then
// the DOM wiring.
import { diceIou } from '../../engine/metrics/index.ts';
import { upsampleBilinear } from './overlay.ts';
import type { RgbaImage } from './preprocess.ts';

/** A binary mask [H, W] (0/1) of a probability map [h, w] upsampled to H x W and thresholded. */
export function binaryMask(
  prob: ArrayLike<number>,
  h: number,
  w: number,
  outH: number,
  outW: number,
  threshold: number,
): Uint8Array {
  const up = upsampleBilinear(prob, h, w, outH, outW),
    out = new Uint8Array(up.length);
  for (let i = 0; i < up.length; i++) out[i] = up[i] > threshold ? 1 : 0;
  return out;
}

/** A ground-truth mask image as [0, 1] values (luma of RGB / 255). */
export function maskValues(img: RgbaImage): Float32Array {
  const out = new Float32Array(img.width * img.height);
  for (let i = 0; i < out.length; i++)
    out[i] = (0.299 * img.data[4 * i] + 0.587 * img.data[4 * i + 1] + 0.114 * img.data[4 * i + 2]) / 255;
  return out;
}

/** Dice and IoU of the prediction against a ground-truth mask image, at the mask's own size. */
export function scoreAgainst(
  prob: ArrayLike<number>,
  size: [number, number],
  truth: RgbaImage,
  threshold: number,
): { dice: number; iou: number } {
  const up = upsampleBilinear(prob, size[0], size[1], truth.height, truth.width);
  return diceIou(up, maskValues(truth), threshold);
}

// ---- DOM -------------------------------------------------------------------------------------------

/** Offers `blob` as a download named `name`. */
export function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** A 0/1 mask [H, W] as a black-and-white PNG. */
export async function maskPng(mask: Uint8Array, width: number, height: number): Promise<Blob> {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i] ? 255 : 0;
    rgba[4 * i] = v;
    rgba[4 * i + 1] = v;
    rgba[4 * i + 2] = v;
    rgba[4 * i + 3] = 255;
  }
  const c = new OffscreenCanvas(width, height);
  c.getContext('2d')!.putImageData(new ImageData(rgba, width, height), 0, 0);
  return c.convertToBlob({ type: 'image/png' });
}

/** File names from the image's name: "Colonoscopy: polyp" -> "colonoscopy-polyp". */
export const stem = (name: string) =>
  name
    .replace(/\.[a-z0-9]+$/i, '')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase() || 'image';

export interface OutputHooks {
  /** The shown mask's source (null: the result is no mask). */
  seg(): { prob: ArrayLike<number>; size: [number, number]; width: number; height: number } | null;
  /** The shown result as JSON (null: none), and the file-name stem of its image. */
  numbers(): { json: object; stem: string } | null;
  /** Repaints the result with the current threshold and opacity. */
  redraw(): void;
}

/** The threshold and opacity sliders and the three download buttons. */
export function wireOutputs(view: { threshold: number; opacity: number }, h: OutputHooks): void {
  const $ = (id: string) => document.getElementById(id) as HTMLInputElement;
  $('threshold').oninput = () => {
    view.threshold = Number($('threshold').value);
    $('threshold-value').textContent = view.threshold.toFixed(2);
    h.redraw();
  };
  $('opacity').oninput = () => {
    view.opacity = Number($('opacity').value);
    $('opacity-value').textContent = `${Math.round(100 * view.opacity)}%`;
    h.redraw();
  };
  $('dl-mask').onclick = async () => {
    const s = h.seg(),
      n = h.numbers();
    if (!s || !n) return;
    download(
      await maskPng(binaryMask(s.prob, s.size[0], s.size[1], s.height, s.width, view.threshold), s.width, s.height),
      `${n.stem}-mask.png`,
    );
  };
  $('dl-overlay').onclick = async () => {
    const n = h.numbers();
    if (!n) return;
    const canvas = document.getElementById('view') as HTMLCanvasElement;
    canvas.toBlob((b) => {
      if (b) download(b, `${n.stem}-overlay.png`);
    }, 'image/png');
  };
  $('dl-json').onclick = () => {
    const n = h.numbers();
    if (n) download(new Blob([JSON.stringify(n.json)], { type: 'application/json' }), `${n.stem}-result.json`);
  };
}
