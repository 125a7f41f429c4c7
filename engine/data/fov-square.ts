// Square field-of-view normalisation used by the EndoExtend24 real-frame recipes (their measured
// figures were made with it). engine/data/fov.ts is the EndoKED frame preparation (panel and text
// inpainting, no square crop); the two answer different questions and are kept apart.
// Field-of-view normalisation for endoscopy frames, against shortcut learning. Frames of one
// class often come from other devices or exports than frames of the other: in PolypGen the
// polyp-free sequences are 16:9 recordings with wide black margins, a green scope-guide panel and
// on-screen text, while the polyp frames are 4:3 crops that fill the frame; some sequences carry a
// saturated blue status bar inside the image; in WCEBleedGen the bleeding frames have an
// octagonal field of view and the others a round one. A classifier learns such cues instead of
// the finding (Geirhos et al., "Shortcut learning in deep neural networks", Nat. Mach. Intell.
// 2020). So every frame is brought to the same geometry before anything sees it:
//   1. a saturated blue overlay block, when one is found, is filled with the mirrored pixels
//      just below it (a block of black would be a cue of its own);
//   2. the crop is the bounding box of the lit field of view (columns, then rows, where more than
//      half the pixels are lit), so margins, side panels and margin text fall away;
//   3. a centred square of that box (side = its shorter edge) is kept, so aspect ratios agree;
//   4. everything outside the inscribed circle (radius `circle` x half the side) is set to black,
//      so octagonal and round fields, and corner text, look alike.
// Pure TypeScript on interleaved 8-bit RGB (the engine's RgbImage).
import type { RgbImage } from './images.ts';

export interface FovOptions {
  /** A pixel is lit when its Rec. 601 luma exceeds this (0-255). */
  litThreshold?: number;
  /** Radius of the kept circle as a fraction of half the square's side. */
  circle?: number;
}

export interface FovResult {
  image: RgbImage;
  /** The square crop in the input's pixels. */
  crop: { x: number; y: number; size: number };
  /** The blue overlay block that was filled, if any (input pixels). */
  overlay: { x0: number; y0: number; x1: number; y1: number } | null;
}

const luma = (d: Uint8Array, i: number) => 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
const isOverlayBlue = (d: Uint8Array, i: number) => d[i + 2] > 120 && d[i + 2] > d[i] + 70 && d[i + 2] > d[i + 1] + 70;

/** Finds a compact block of saturated blue (an on-screen status bar) and fills it from below. */
export function fillBlueOverlay(img: RgbImage): FovResult['overlay'] {
  const { width: w, height: h, data } = img;
  let n = 0,
    x0 = w,
    y0 = h,
    x1 = -1,
    y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!isOverlayBlue(data, 3 * (y * w + x))) continue;
      n++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  // Stray blue pixels (dye, reflections) are not a bar: ask for a block that is mostly blue.
  if (n < 0.002 * w * h || n < 0.3 * (x1 - x0 + 1) * (y1 - y0 + 1)) return null;
  // Text inside the bar is white, so grow the block by a margin before filling.
  const m = Math.max(1, Math.round(0.01 * Math.max(w, h)));
  x0 = Math.max(0, x0 - m);
  y0 = Math.max(0, y0 - m);
  x1 = Math.min(w - 1, x1 + m);
  y1 = Math.min(h - 1, y1 + m);
  const below = y1 + (y1 - y0 + 1) < h; // mirror from below when the image is tall enough, else from above
  for (let y = y0; y <= y1; y++) {
    const sy = below ? y1 + 1 + (y1 - y) : Math.max(0, y0 - 1 - (y - y0));
    data.copyWithin(3 * (y * w + x0), 3 * (sy * w + x0), 3 * (sy * w + x1 + 1));
  }
  return { x0, y0, x1, y1 };
}

/** The square field-of-view crop with the outside of its inscribed circle blacked out. */
export function fovCrop(input: RgbImage, opts: FovOptions = {}): FovResult {
  const t = opts.litThreshold ?? 30,
    circle = opts.circle ?? 0.98;
  const img: RgbImage = { width: input.width, height: input.height, data: input.data.slice() };
  const overlay = fillBlueOverlay(img);
  const { width: w, height: h, data } = img;
  const lit = new Uint8Array(w * h);
  for (let p = 0; p < w * h; p++) lit[p] = luma(data, 3 * p) > t ? 1 : 0;
  const span = (len: number, frac: (k: number) => number): [number, number] => {
    let a = -1,
      b = -1;
    for (let k = 0; k < len; k++)
      if (frac(k) > 0.5) {
        if (a < 0) a = k;
        b = k;
      }
    return a < 0 ? [0, len - 1] : [a, b]; // nothing lit: keep the whole frame
  };
  const [cx0, cx1] = span(w, (x) => {
    let s = 0;
    for (let y = 0; y < h; y++) s += lit[y * w + x];
    return s / h;
  });
  const [ry0, ry1] = span(h, (y) => {
    let s = 0;
    for (let x = cx0; x <= cx1; x++) s += lit[y * w + x];
    return s / (cx1 - cx0 + 1);
  });
  const bw = cx1 - cx0 + 1,
    bh = ry1 - ry0 + 1,
    size = Math.min(bw, bh);
  const x = cx0 + Math.floor((bw - size) / 2),
    y = ry0 + Math.floor((bh - size) / 2);
  const out = new Uint8Array(size * size * 3);
  const c = (size - 1) / 2,
    r2 = ((circle * size) / 2) ** 2;
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      if ((i - c) ** 2 + (j - c) ** 2 > r2) continue;
      const s = 3 * ((y + j) * w + x + i),
        o = 3 * (j * size + i);
      out[o] = data[s];
      out[o + 1] = data[s + 1];
      out[o + 2] = data[s + 2];
    }
  }
  return { image: { width: size, height: size, data: out }, crop: { x, y, size }, overlay };
}
