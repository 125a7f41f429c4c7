// Raster helpers for the synthetic frame generators: a planar float RGB canvas, value noise,
// a [1,2,1] blur, irregular blobs (a radius modulated by a few harmonics, so boundaries look
// organic), anti-aliased polyline strokes, and the small compositing tools the contact sheet
// needs. Plain TypeScript over typed arrays; a 256x256 frame costs a few milliseconds.
// Value noise with smoothstep interpolation and fractal sums of octaves: K. Perlin, "An image
// synthesizer", SIGGRAPH 1985 (the lattice-noise family; value rather than gradient noise).
import type { Rng, RgbImage, MaskImage } from '../../engine/data/index.ts';

export type { RgbImage, MaskImage };
export type Rgb = readonly [number, number, number];

export class Canvas {
  readonly r: Float32Array;
  readonly g: Float32Array;
  readonly b: Float32Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    const n = width * height;
    this.r = new Float32Array(n);
    this.g = new Float32Array(n);
    this.b = new Float32Array(n);
  }
  fill(c: Rgb): this {
    this.r.fill(c[0]);
    this.g.fill(c[1]);
    this.b.fill(c[2]);
    return this;
  }
  /** Blends colour c over pixel i with opacity a in [0, 1]. */
  blend(i: number, c: Rgb, a: number): void {
    if (a <= 0) return;
    if (a > 1) a = 1;
    this.r[i] += (c[0] - this.r[i]) * a;
    this.g[i] += (c[1] - this.g[i]) * a;
    this.b[i] += (c[2] - this.b[i]) * a;
  }
  scale(i: number, f: number): void {
    this.r[i] *= f;
    this.g[i] *= f;
    this.b[i] *= f;
  }
  /** Clamps to [0, 1] and rounds to 8 bits (Uint8ClampedArray: round half to even). */
  toRgb(): RgbImage {
    const n = this.width * this.height,
      data = new Uint8Array(3 * n),
      out = new Uint8ClampedArray(data.buffer);
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[j] = this.r[i] * 255;
      out[j + 1] = this.g[i] * 255;
      out[j + 2] = this.b[i] * 255;
    }
    return { width: this.width, height: this.height, data };
  }
}

function q8(v: number): number {
  return v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
}
const smooth = (t: number) => t * t * (3 - 2 * t);
export const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
export const mix = (a: Rgb, b: Rgb, t: number): Rgb => [
  a[0] + (b[0] - a[0]) * t,
  a[1] + (b[1] - a[1]) * t,
  a[2] + (b[2] - a[2]) * t,
];

/**
 * Fractal value noise over a w x h grid, values in about [-1, 1]. `cells` lattice cells span
 * the larger side at the first octave; each further octave doubles the cells and multiplies the
 * amplitude by `persistence`.
 */
export function noiseField(
  rng: Rng,
  w: number,
  h: number,
  cells: number,
  octaves = 1,
  persistence = 0.5,
): Float32Array {
  const out = new Float32Array(w * h);
  const side = Math.max(w, h);
  let amp = 1,
    norm = 0;
  for (let o = 0; o < octaves; o++, amp *= persistence) {
    const c = Math.max(1, cells * 2 ** o),
      step = side / c;
    const gw = Math.ceil(w / step) + 2,
      gh = Math.ceil(h / step) + 2;
    const lattice = new Float32Array(gw * gh);
    for (let i = 0; i < lattice.length; i++) lattice[i] = rng.random() * 2 - 1;
    const ox = rng.random(),
      oy = rng.random(); // sub-cell offset so octaves do not share grid lines
    const ixs = new Int32Array(w),
      txs = new Float32Array(w);
    for (let x = 0; x < w; x++) {
      const fx = x / step + ox;
      ixs[x] = Math.floor(fx);
      txs[x] = smooth(fx - ixs[x]);
    }
    for (let y = 0; y < h; y++) {
      const fy = y / step + oy,
        iy = Math.floor(fy),
        ty = smooth(fy - iy),
        row = iy * gw,
        o = y * w;
      for (let x = 0; x < w; x++) {
        const k = row + ixs[x],
          tx = txs[x];
        const top = lattice[k] + (lattice[k + 1] - lattice[k]) * tx;
        const bot = lattice[k + gw] + (lattice[k + gw + 1] - lattice[k + gw]) * tx;
        out[o + x] += amp * (top + (bot - top) * ty);
      }
    }
    norm += amp;
  }
  for (let i = 0; i < out.length; i++) out[i] /= norm;
  return out;
}

/** Separable [1, 2, 1] / 4 blur of one plane, edges clamped; `passes` times. */
export function blur121(p: Float32Array, w: number, h: number, passes = 1): void {
  if (w < 2 || h < 2) return;
  const t = new Float32Array(p.length);
  for (let n = 0; n < passes; n++) {
    for (let y = 0; y < h; y++) {
      const o = y * w;
      t[o] = (3 * p[o] + p[o + 1]) * 0.25;
      for (let x = 1; x < w - 1; x++) t[o + x] = (p[o + x - 1] + 2 * p[o + x] + p[o + x + 1]) * 0.25;
      t[o + w - 1] = (p[o + w - 2] + 3 * p[o + w - 1]) * 0.25;
    }
    for (let y = 0; y < h; y++) {
      const up = (y > 0 ? y - 1 : 0) * w,
        dn = (y < h - 1 ? y + 1 : y) * w,
        o = y * w;
      for (let x = 0; x < w; x++) p[o + x] = (t[up + x] + 2 * t[o + x] + t[dn + x]) * 0.25;
    }
  }
}
export function blurCanvas(c: Canvas, passes = 1): void {
  for (const p of [c.r, c.g, c.b]) blur121(p, c.width, c.height, passes);
}

/**
 * An irregular closed shape: in a frame rotated by `angle` and stretched by `aspect`, the
 * boundary radius is r (1 + sum_k amps[k] cos((k + 2) theta + phases[k])).
 */
export interface BlobShape {
  cx: number;
  cy: number;
  r: number;
  aspect: number;
  angle: number;
  amps: number[];
  phases: number[];
}

export function randomBlob(rng: Rng, cx: number, cy: number, r: number, irregularity: number, aspect = 1): BlobShape {
  const amps: number[] = [],
    phases: number[] = [];
  for (let k = 0; k < 4; k++) {
    amps.push(rng.uniform(0, irregularity) / (k + 1));
    phases.push(rng.uniform(0, 2 * Math.PI));
  }
  return { cx, cy, r, aspect, angle: rng.uniform(0, Math.PI), amps, phases };
}

/**
 * The blob's normalised radius at (x, y): < 1 inside, 1 on its boundary; its trigonometry
 * hoisted (cos k theta by the Chebyshev recurrence).
 */
function blobRhoFn(b: BlobShape): (x: number, y: number) => number {
  const ca = Math.cos(b.angle),
    sa = Math.sin(b.angle),
    s = Math.sqrt(b.aspect),
    K = b.amps.length;
  const ac = b.amps.map((a, k) => a * Math.cos(b.phases[k])),
    as = b.amps.map((a, k) => a * Math.sin(b.phases[k]));
  return (x, y) => {
    const dx = x - b.cx,
      dy = y - b.cy;
    const u = (dx * ca + dy * sa) / s,
      v = (-dx * sa + dy * ca) * s,
      d = Math.sqrt(u * u + v * v);
    if (d === 0) return 0;
    const c1 = u / d,
      s1 = v / d;
    // harmonics k + 2 = 2..K+1: cos(m t + p) = cos(m t) cos p - sin(m t) sin p
    let cm = c1 * c1 - s1 * s1,
      sm = 2 * s1 * c1,
      f = 1;
    for (let k = 0; k < K; k++) {
      f += ac[k] * cm - as[k] * sm;
      const cn = cm * c1 - sm * s1;
      sm = sm * c1 + cm * s1;
      cm = cn;
    }
    return d / (b.r * Math.max(f, 0.2));
  };
}

/** Inclusive pixel bounds [x0, y0, x1, y1] (clipped to w x h) of the blob's rho < rhoMax region. */
export function blobBounds(b: BlobShape, w: number, h: number, rhoMax = 1): [number, number, number, number] {
  let ext = 1;
  for (const a of b.amps) ext += Math.abs(a);
  const R = b.r * ext * Math.sqrt(Math.max(b.aspect, 1 / b.aspect)) * rhoMax + 1;
  return [
    Math.max(0, Math.floor(b.cx - R)),
    Math.max(0, Math.floor(b.cy - R)),
    Math.min(w - 1, Math.ceil(b.cx + R)),
    Math.min(h - 1, Math.ceil(b.cy + R)),
  ];
}

/** Calls fn for every pixel (centre x+0.5, y+0.5) of a w x h grid whose rho < rhoMax. */
export function forEachInBlob(
  b: BlobShape,
  w: number,
  h: number,
  rhoMax: number,
  fn: (i: number, x: number, y: number, rho: number) => void,
): void {
  const [x0, y0, x1, y1] = blobBounds(b, w, h, rhoMax);
  const rhoAt = blobRhoFn(b);
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const rho = rhoAt(x + 0.5, y + 0.5);
      if (rho < rhoMax) fn(y * w + x, x + 0.5, y + 0.5, rho);
    }
}

/**
 * Max-accumulates the coverage of a polyline (points as [x0, y0, x1, y1, ...], one width per
 * point, linearly interpolated) into `alpha`, with a one-pixel anti-aliased edge.
 */
export function strokePath(
  alpha: Float32Array,
  w: number,
  h: number,
  pts: number[],
  widths: number[],
  strength = 1,
): void {
  for (let s = 0; s + 3 < pts.length; s += 2) {
    const ax = pts[s],
      ay = pts[s + 1],
      bx = pts[s + 2],
      by = pts[s + 3];
    const wa = widths[s / 2],
      wb = widths[s / 2 + 1] ?? wa;
    const pad = Math.max(wa, wb) / 2 + 1;
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - pad)),
      x1 = Math.min(w - 1, Math.ceil(Math.max(ax, bx) + pad));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - pad)),
      y1 = Math.min(h - 1, Math.ceil(Math.max(ay, by) + pad));
    const ex = bx - ax,
      ey = by - ay,
      len2 = ex * ex + ey * ey || 1;
    for (let y = y0; y <= y1; y++)
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5 - ax,
          py = y + 0.5 - ay;
        const t = clamp01((px * ex + py * ey) / len2);
        const qx = px - t * ex,
          qy = py - t * ey,
          d = Math.sqrt(qx * qx + qy * qy);
        const cov = clamp01((wa + (wb - wa) * t) / 2 + 0.5 - d) * strength;
        const i = y * w + x;
        if (cov > alpha[i]) alpha[i] = cov;
      }
  }
}

/** Blends colour c over the canvas with per-pixel opacity alpha[i] * opacity. */
export function paint(c: Canvas, alpha: Float32Array, colour: Rgb, opacity = 1): void {
  for (let i = 0; i < alpha.length; i++) if (alpha[i] > 0) c.blend(i, colour, alpha[i] * opacity);
}

/** A smooth random walk: [x, y, ...] points, heading turning by a random-walk curvature. */
export function randomWalk(
  rng: Rng,
  x: number,
  y: number,
  heading: number,
  steps: number,
  step: number,
  turn: number,
): number[] {
  const pts = [x, y];
  let curv = 0;
  for (let s = 0; s < steps; s++) {
    curv = 0.7 * curv + rng.normal(0, turn);
    heading += curv;
    x += Math.cos(heading) * step;
    y += Math.sin(heading) * step;
    pts.push(x, y);
  }
  return pts;
}

// ---- contact-sheet compositing --------------------------------------------------------------

/** Tints the mask's pixels with colour (opacity a) and draws its boundary in full colour. */
export function overlayMask(img: RgbImage, mask: MaskImage, colour: Rgb, a = 0.35): RgbImage {
  const { width: w, height: h } = img,
    out = new Uint8Array(img.data);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : mask.data[y * w + x]);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!at(x, y)) continue;
      const edge = !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1);
      const t = edge ? 1 : a,
        i = 3 * (y * w + x);
      for (let ch = 0; ch < 3; ch++) out[i + ch] = Math.round(out[i + ch] + (colour[ch] * 255 - out[i + ch]) * t);
    }
  return { width: w, height: h, data: out };
}

/** Lays equally sized tiles out in a grid (row-major) with `pad` pixels of background between. */
export function tileGrid(tiles: RgbImage[], cols: number, pad = 4, background: Rgb = [0.1, 0.1, 0.1]): RgbImage {
  if (tiles.length === 0) throw new Error('tileGrid: no tiles');
  const tw = tiles[0].width,
    th = tiles[0].height,
    rows = Math.ceil(tiles.length / cols);
  const W = cols * tw + (cols + 1) * pad,
    H = rows * th + (rows + 1) * pad;
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) for (let ch = 0; ch < 3; ch++) data[3 * i + ch] = q8(background[ch]);
  tiles.forEach((t, k) => {
    if (t.width !== tw || t.height !== th)
      throw new Error(`tileGrid: tile ${k} is ${t.width}x${t.height}, expected ${tw}x${th}`);
    const ox = pad + (k % cols) * (tw + pad),
      oy = pad + Math.floor(k / cols) * (th + pad);
    for (let y = 0; y < th; y++) data.set(t.data.subarray(3 * y * tw, 3 * (y + 1) * tw), 3 * ((oy + y) * W + ox));
  });
  return { width: W, height: H, data };
}
