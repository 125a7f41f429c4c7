// Synthetic colonoscopy frames with polyps and their exact pixel masks: the project's default
// stand-in for Kvasir-SEG / CVC-ClinicDB (spec §2.5) when no real data is present.
// A frame is first sampled as a small scene description (`ColonoscopyScene`: seed, size, the
// polyps' geometry and look, the lumen, the corner cut) and then rendered deterministically.
// Layers, each drawn from its own named random stream (rng.ts), in order:
//   mucosa (pinkish red, low-frequency value noise, fine grain) -> haustral folds (rings around
//   the lumen with a shadow line) -> branching vessels -> mild [1,2,1] blur -> polyps (dome
//   shading, own texture and tint, specular spot; softened edge inside the boundary) ->
//   illumination (darker towards the lumen, dark lumen core) -> specular highlights ->
//   vignetting -> black octagonal corners of the endoscope's field of view.
// The mask is the union of the polyps' regions inside the field of view. A polyp only changes
// pixels inside its own region (no shadow outside it), so rendering the same scene without its
// polyps changes no pixel outside the mask: the mask is exactly the drawn region.
import { logUniform, rng, weighted, type Rng } from '../../engine/data/index.ts';
import {
  Canvas,
  blobBounds,
  blurCanvas,
  clamp01,
  forEachInBlob,
  mix,
  noiseField,
  paint,
  randomBlob,
  randomWalk,
  strokePath,
  type BlobShape,
  type MaskImage,
  type Rgb,
  type RgbImage,
} from './raster.ts';

export interface PolypSpec {
  /** The union of these blobs is the polyp (one blob, or several for a lobulated polyp). */
  blobs: BlobShape[];
  /** 'red': redder than the mucosa; 'pale': paler, whitish pink. */
  tint: 'red' | 'pale';
  tintStrength: number;
  /** Lattice cells of the surface texture across the frame, and its contrast. */
  textureCells: number;
  textureStrength: number;
  /** Light direction's x, y (z = 1): shading and the specular spot move with it. */
  light: [number, number];
  shininess: number;
}

export interface ColonoscopyScene {
  seed: number;
  width: number;
  height: number;
  polyps: PolypSpec[];
  /** Centre and radius (pixels) of the dark lumen, or null for a close view of the wall. */
  lumen: { x: number; y: number; r: number } | null;
  /** Octagonal corner cut as a fraction of the width (0: none). */
  corner: number;
}

export interface ColonoscopyOptions {
  width?: number;
  height?: number;
  /** A fixed number of polyps, or the probabilities of 0, 1, 2 polyps (default [0.3, 0.55, 0.15]). */
  polyps?: number | readonly number[];
  /** Range of the first polyp's area as a fraction of the frame (default [0.02, 0.25]). */
  polypArea?: readonly [number, number];
}

export interface SegmentationSample {
  image: RgbImage;
  mask: MaskImage;
  scene: ColonoscopyScene;
}

/** Samples a scene from the stream (seed, labels...). */
export function sampleColonoscopyScene(r: Rng, opts: ColonoscopyOptions = {}): ColonoscopyScene {
  const width = opts.width ?? 256,
    height = opts.height ?? 256;
  if (!(width >= 8 && height >= 8)) throw new Error(`colonoscopy: frame size ${width}x${height} is too small (>= 8x8)`);
  const lumen = r.bool(0.8)
    ? {
        x: width * r.uniform(0.15, 0.85),
        y: height * r.uniform(0.15, 0.85),
        r: Math.min(width, height) * r.uniform(0.05, 0.16),
      }
    : null;
  const corner = r.bool(0.6) ? r.uniform(0.08, 0.16) : 0;
  const count = typeof opts.polyps === 'number' ? opts.polyps : weighted(r, opts.polyps ?? [0.3, 0.55, 0.15]);
  const [aLo, aHi] = opts.polypArea ?? [0.02, 0.25];
  const polyps: PolypSpec[] = [];
  for (let k = 0; k < count; k++) {
    const area = k === 0 ? logUniform(r, aLo, aHi) : logUniform(r, aLo, Math.max(aLo, Math.min(aHi, 0.08)));
    polyps.push(samplePolyp(r, width, height, area, lumen, corner));
  }
  return { seed: r.nextU32(), width, height, polyps, lumen, corner };
}

function samplePolyp(
  r: Rng,
  w: number,
  h: number,
  area: number,
  lumen: ColonoscopyScene['lumen'],
  corner: number,
): PolypSpec {
  const rad = Math.sqrt((area * w * h) / Math.PI);
  // The centre stays inside the field of view (so the mask is never empty) and, when it can,
  // away from the lumen: polyps sit on the wall.
  let cx = w / 2,
    cy = h / 2;
  for (let t = 0; t < 30; t++) {
    cx = w * r.uniform(0.15, 0.85);
    cy = h * r.uniform(0.15, 0.85);
    if (inCorner(cx, cy, w, h, corner)) continue;
    if (!lumen || dist(cx - lumen.x, cy - lumen.y) > lumen.r + 0.6 * rad) break;
  }
  const lobulated = r.bool(0.3);
  const blobs: BlobShape[] = [
    randomBlob(r, cx, cy, lobulated ? 0.8 * rad : rad, r.uniform(0.03, 0.22), r.uniform(0.7, 1.4)),
  ];
  if (lobulated) {
    for (let n = r.randint(2, 4), k = 0; k < n; k++) {
      const a = r.uniform(0, 2 * Math.PI),
        d = rad * r.uniform(0.35, 0.75);
      blobs.push(randomBlob(r, cx + d * Math.cos(a), cy + d * Math.sin(a), rad * r.uniform(0.35, 0.6), 0.15));
    }
  }
  return {
    blobs,
    tint: r.bool(0.6) ? 'red' : 'pale',
    tintStrength: r.uniform(0.35, 0.9),
    textureCells: Math.max(4, Math.min(w, h) / Math.max(2, rad / r.uniform(2, 5))),
    textureStrength: r.uniform(0.06, 0.2),
    light: [r.uniform(-0.6, 0.6), r.uniform(-0.6, 0.6)],
    shininess: logUniform(r, 60, 250),
  };
}

const dist = (x: number, y: number) => Math.sqrt(x * x + y * y);
/** A smooth bump: 1 at t = 0, 0 for |t| >= 1. */
const bump = (t: number) => (t <= -1 || t >= 1 ? 0 : (1 - t * t) * (1 - t * t));

function inCorner(x: number, y: number, w: number, h: number, corner: number): boolean {
  if (corner <= 0) return false;
  const c = corner * w;
  return x + y < c || w - x + y < c || x + h - y < c || w - x + h - y < c;
}

/** Renders a scene. `withPolyps: false` draws the same frame without its polyps. */
export function renderColonoscopy(scene: ColonoscopyScene, withPolyps = true): { image: RgbImage; mask: MaskImage } {
  const { width: w, height: h, seed } = scene,
    n = w * h,
    s = Math.min(w, h) / 256;
  const c = new Canvas(w, h);
  const r = rng(seed, 'mucosa');
  const base = mix([0.84, 0.44, 0.4], [0.86, 0.52, 0.36], r.random());
  const bright = r.uniform(0.88, 1.04);
  // Four octaves of value noise serve every layer: low-frequency shading (which also breaks the
  // fold rings up), fine grain, and a warp for the folds and the lumen's edge.
  const low = noiseField(r, w, h, 3, 2),
    grain = noiseField(r, w, h, 26, 1),
    warp = noiseField(r, w, h, 4, 1);
  const foldStrength = r.bool(0.75) ? r.uniform(0.4, 1) : 0,
    foldFreq = r.uniform(2, 4.5);
  const lum = scene.lumen ?? { x: w * r.uniform(-0.5, 1.5), y: h * r.uniform(-0.5, 1.5), r: 0 };
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      let v = bright * (1 + 0.13 * low[i] + 0.05 * grain[i]);
      // Folds: rings of constant log-distance to the lumen (perspective spacing), warped by noise;
      // a lit crest followed by a thin shadow.
      const d = dist(x - lum.x, y - lum.y) + 1;
      const ph = foldFreq * Math.log(d / (4 * s)) + 0.7 * warp[i];
      const f = ph - Math.floor(ph);
      const k = foldStrength * clamp01(0.35 + 2.2 * low[i]);
      v *= 1 + k * (0.2 * bump((f - 0.4) / 0.3) - 0.32 * bump((f - 0.78) / 0.16));
      const red = 0.04 * low[i];
      c.r[i] = (base[0] + red) * v;
      c.g[i] = (base[1] - red) * v;
      c.b[i] = (base[2] - red) * v;
    }
  drawVessels(c, rng(seed, 'vessels'), s);
  blurCanvas(c, 1);

  const mask = new Uint8Array(n);
  if (withPolyps) scene.polyps.forEach((p, k) => drawPolyp(c, p, rng(seed, 'polyp', k), mask));

  // Illumination from the scope tip: light falls off towards the far (lumen) region.
  if (scene.lumen) {
    const L = scene.lumen,
      diag = dist(w, h),
      core = Math.max(1, L.r);
    const dark: Rgb = [0.1, 0.035, 0.03];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = y * w + x,
          d = dist(x + 0.5 - L.x, y + 0.5 - L.y) * (1 + 0.3 * warp[i]);
        c.scale(i, 0.35 + 0.65 * Math.sqrt(clamp01((d - core) / (0.35 * diag))));
        if (d < 1.4 * core) c.blend(i, dark, clamp01(1.4 - d / core));
      }
  }
  drawHighlights(c, rng(seed, 'highlights'), s);
  const vig = rng(seed, 'vignette').uniform(0.25, 0.5);
  const hw = w / 2,
    hh = h / 2,
    r2max = hw * hw + hh * hh,
    cut = scene.corner * w;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x,
        px = x + 0.5,
        py = y + 0.5;
      if (cut > 0 && (px + py < cut || w - px + py < cut || px + h - py < cut || w - px + h - py < cut)) {
        c.r[i] = c.g[i] = c.b[i] = 0;
        mask[i] = 0;
        continue;
      }
      const q = ((px - hw) ** 2 + (py - hh) ** 2) / r2max;
      c.scale(i, 1 - vig * q * Math.sqrt(Math.sqrt(q))); // radius^2.5
    }
  return { image: c.toRgb(), mask: { width: w, height: h, data: mask } };
}

/** Branching vessel trees: darker red, thin, semi-transparent. */
function drawVessels(c: Canvas, r: Rng, s: number): void {
  const { width: w, height: h } = c,
    alpha = new Float32Array(w * h);
  const trees = r.randint(3, 9);
  const grow = (x: number, y: number, heading: number, width: number, depth: number) => {
    const pts = randomWalk(r, x, y, heading, r.randint(8, 24), 4 * s, 0.18);
    const widths = pts.filter((_, k) => k % 2 === 0).map((_, k, a) => width * (1 - 0.5 * (k / a.length)));
    strokePath(alpha, w, h, pts, widths, r.uniform(0.6, 1));
    if (depth < 3)
      for (let b = 0; b < 2; b++)
        if (r.bool(0.6)) {
          const k = 2 * r.randint(1, pts.length / 2 - 1);
          grow(pts[k], pts[k + 1], heading + r.uniform(-1.4, 1.4), width * 0.65, depth + 1);
        }
  };
  for (let t = 0; t < trees; t++)
    grow(r.uniform(0, w), r.uniform(0, h), r.uniform(0, 2 * Math.PI), r.uniform(0.8, 2) * s + 0.3, 0);
  paint(c, alpha, [0.55, 0.12, 0.16], r.uniform(0.25, 0.5));
}

/** Draws one polyp over c, only at pixels inside it, and sets those pixels in mask. */
function drawPolyp(c: Canvas, p: PolypSpec, r: Rng, mask: Uint8Array): void {
  const { width: w, height: h } = c;
  // Work in the polyp's bounding box: per pixel, the smallest normalised radius over the blobs
  // and the dome's surface normal there.
  let X0 = w,
    Y0 = h,
    X1 = -1,
    Y1 = -1;
  for (const b of p.blobs) {
    const [x0, y0, x1, y1] = blobBounds(b, w, h);
    X0 = Math.min(X0, x0);
    Y0 = Math.min(Y0, y0);
    X1 = Math.max(X1, x1);
    Y1 = Math.max(Y1, y1);
  }
  if (X1 < X0 || Y1 < Y0) return;
  const bw = X1 - X0 + 1,
    bh = Y1 - Y0 + 1,
    n = bw * bh;
  const rho = new Float32Array(n).fill(2),
    nx = new Float32Array(n),
    ny = new Float32Array(n);
  for (const b of p.blobs)
    forEachInBlob(b, w, h, 1, (_i, x, y, q) => {
      const j = (Math.floor(y) - Y0) * bw + Math.floor(x) - X0;
      if (q >= rho[j]) return;
      const dx = x - b.cx,
        dy = y - b.cy,
        d = dist(dx, dy) || 1;
      rho[j] = q;
      nx[j] = (q * dx) / d;
      ny[j] = (q * dy) / d;
    });
  const cells = (p.textureCells * Math.max(bw, bh)) / Math.max(w, h);
  const tex = noiseField(r, bw, bh, cells, 1),
    pit = noiseField(r, bw, bh, cells * 3, 1);
  const [lx, ly] = p.light,
    ll = Math.sqrt(lx * lx + ly * ly + 1);
  const hx = lx / ll,
    hy = ly / ll,
    hz = 1 / ll + 1,
    hl = Math.sqrt(hx * hx + hy * hy + hz * hz); // Blinn half vector
  const pale: Rgb = [0.96, 0.68, 0.64],
    ts = p.tintStrength;
  // The polyp occludes the wall: its base colour is the wall's mean under it (plus a little of
  // the local colour), so folds and vessels do not show through.
  const idx = (j: number) => (Y0 + Math.floor(j / bw)) * w + X0 + (j % bw);
  let mr = 0,
    mg = 0,
    mb = 0,
    cnt = 0;
  for (let j = 0; j < n; j++)
    if (rho[j] < 1) {
      const i = idx(j);
      mr += c.r[i];
      mg += c.g[i];
      mb += c.b[i];
      cnt++;
    }
  if (cnt === 0) return;
  mr /= cnt;
  mg /= cnt;
  mb /= cnt;
  for (let j = 0; j < n; j++) {
    const q = rho[j];
    if (q >= 1) continue;
    const i = idx(j);
    const z = Math.sqrt(1 - q * q);
    const diffuse = 0.7 + 0.5 * Math.max(0, (nx[j] * lx + ny[j] * ly + z) / ll);
    const sp = 0.85 * Math.max(0, (nx[j] * hx + ny[j] * hy + z * hz) / hl) ** p.shininess;
    let cr = 0.85 * mr + 0.15 * c.r[i],
      cg = 0.85 * mg + 0.15 * c.g[i],
      cb = 0.85 * mb + 0.15 * c.b[i];
    if (p.tint === 'red') {
      cr = cr * (1 + 0.12 * ts) + 0.03;
      cg *= 1 - 0.28 * ts;
      cb *= 1 - 0.25 * ts;
    } else {
      const t = 0.6 * ts;
      cr += (pale[0] - cr) * t;
      cg += (pale[1] - cg) * t;
      cb += (pale[2] - cb) * t;
    }
    // Darker rim where the dome meets the wall; the boundary is softened but stays inside.
    const v = diffuse * (1 + p.textureStrength * (tex[j] + 0.8 * pit[j])) * (1 - 0.22 * clamp01((q - 0.8) / 0.2));
    c.blend(i, [cr * v + sp, cg * v + sp, cb * v + sp], q < 0.85 ? 1 : 1 - ((q - 0.85) / 0.15) * 0.45);
    mask[i] = 1;
  }
}

/** Specular reflections of the scope's light: small saturated white blobs, in clusters. */
function drawHighlights(c: Canvas, r: Rng, s: number): void {
  const { width: w, height: h } = c;
  const clusters = r.randint(2, 6);
  for (let k = 0; k < clusters; k++) {
    const cx = r.uniform(0, w),
      cy = r.uniform(0, h),
      spread = r.uniform(4, 30) * s;
    for (let m = r.randint(2, 12); m > 0; m--) {
      const b = randomBlob(
        r,
        cx + r.normal(0, spread),
        cy + r.normal(0, spread),
        logUniform(r, 0.6, 3.5) * s + 0.3,
        0.15,
        r.uniform(0.3, 1),
      );
      forEachInBlob(b, w, h, 1.6, (i, _x, _y, q) =>
        c.blend(i, [1, 1, 1], q < 0.7 ? 1 : clamp01((1.6 - q) / 0.9) * 0.8),
      );
    }
  }
}

/** Item `index` of the synthetic polyp set with this seed. */
export function polypSample(seed: number, index: number, opts: ColonoscopyOptions = {}): SegmentationSample {
  const scene = sampleColonoscopyScene(rng(seed, 'polyp-set', index), opts);
  return { ...renderColonoscopy(scene), scene };
}
