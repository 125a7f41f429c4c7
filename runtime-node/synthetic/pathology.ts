// Synthetic optical-biopsy data for EndoKED's pathology fine-tuning (spec §2.7): close-up
// colonoscopy frames of polyps, each polyp with one of four pathology types, several frames per
// polyp and one or two polyps per patient, so that patient-wise splits matter.
// The reference ([K] zwyang6/ENDOKED EndoKED_MIL/Datasets_loader/
// dataset_Endo_3Center_withPathologyLabel.py) only numbers the types 0..3 (its folders 1, 3, 4, 5)
// and groups them as 0 vs {1, 2, 3} (2 classes) and 0 / {1, 2} / 3 (3 classes). The names here
// are ours, chosen so that both groupings mean something clinically: 0 hyperplastic
// (non-neoplastic), 1 tubular adenoma, 2 villous adenoma, 3 adenocarcinoma; 2 classes are then
// non-neoplastic vs neoplastic, 3 classes hyperplastic / adenoma / carcinoma.
// The cues are visual, after the optical-diagnosis criteria endoscopists use (NICE and Kudo's pit
// patterns): hyperplastic polyps are paler, smoother, with small round or star-like pits;
// adenomas are redder, more often lobulated, with elongated tubular (type 1) or branched,
// gyrus-like (type 2) surface pits; carcinomas are large, irregular, with disrupted pits and dark
// erosions. Every cue is drawn from overlapping distributions (some hyperplastic polyps are red,
// some adenomas pale, the pit contrast may be faint) so the task is learnable but not trivial.
// Frames reuse the colonoscopy painter (colonoscopy.ts) for the wall, the polyp's dome, tint and
// texture, lighting and the field of view; this file chooses the polyp's look per type and adds
// the surface pattern over the polyp's mask, multiplicatively, so the frame's lighting stays.
import { logUniform, rng, weighted, type Rng } from '../../engine/data/index.ts';
import {
  randomBlob,
  randomWalk,
  strokePath,
  clamp01,
  type BlobShape,
  type MaskImage,
  type RgbImage,
} from './raster.ts';
import { renderColonoscopy, sampleColonoscopyScene, type ColonoscopyScene, type PolypSpec } from './colonoscopy.ts';

export const PATHOLOGY_TYPES = ['hyperplastic', 'tubular-adenoma', 'villous-adenoma', 'adenocarcinoma'] as const;
export type PathologyType = 0 | 1 | 2 | 3;
/** The reference's groupings of the four types (spec §2.7). */
export const PATHOLOGY_GROUPS = {
  2: { classes: ['non-neoplastic', 'neoplastic'], of: [0, 1, 1, 1] },
  3: { classes: ['hyperplastic', 'adenoma', 'carcinoma'], of: [0, 1, 1, 2] },
  4: { classes: [...PATHOLOGY_TYPES], of: [0, 1, 2, 3] },
} as const;
export type PathologyClasses = keyof typeof PATHOLOGY_GROUPS;

/** The class of a pathology type under a grouping (2: 0 vs {1,2,3}; 3: 0 / {1,2} / 3; 4: itself). */
export function pathologyClass(type: number, classes: PathologyClasses): number {
  const of = PATHOLOGY_GROUPS[classes].of as readonly number[];
  if (!(Number.isInteger(type) && type >= 0 && type < of.length))
    throw new Error(`pathologyClass: type ${type} is not 0, 1, 2 or 3`);
  return of[type];
}

/** Kudo-style surface pattern: small round/star pits, tubular, branched (gyrus), or disrupted. */
export type PitPattern = 'star' | 'tubular' | 'branched' | 'irregular';

/** What one polyp looks like in every frame of it (its identity across views). */
export interface PathologyPolyp {
  polypId: string;
  type: PathologyType;
  tint: PolypSpec['tint'];
  tintStrength: number;
  textureStrength: number;
  /** Number of lobes around the main dome (0: a smooth dome). */
  lobes: number;
  irregularity: number;
  pattern: PitPattern;
  /** Darkening of the pits, 0..1 (faint to marked). */
  pitContrast: number;
  /** Pit spacing as a fraction of the polyp's radius. */
  pitSpacing: number;
  /** Dark erosions on the surface (carcinoma). */
  erosions: number;
  /** Polyp area as a fraction of the frame, before per-frame zoom. */
  area: number;
}

export interface PathologyFrame {
  fileName: string;
  scene: ColonoscopyScene;
  polyp: PathologyPolyp;
  patternSeed: number;
}
export interface PathologyPatient {
  patientId: string;
  polyps: PathologyPolyp[];
  frames: PathologyFrame[];
}

export interface PathologySetOptions {
  patients: number;
  width?: number;
  height?: number;
  /** Probabilities of the four types (default [0.4, 0.35, 0.15, 0.1]: 40% non-neoplastic). */
  typeWeights?: readonly number[];
  /** Probabilities of 1, 2, ... polyps per patient (default [0.75, 0.25]). */
  polypsPerPatient?: readonly number[];
  /** Frames per polyp, inclusive (default [2, 5]). */
  framesPerPolyp?: readonly [number, number];
}

interface TypeLook {
  redP: number;
  tint: [number, number];
  texture: [number, number];
  lobedP: number;
  lobes: [number, number];
  irregularity: [number, number];
  patterns: Partial<Record<PitPattern, number>>;
  pit: [number, number];
  spacing: [number, number];
  erosionP: number;
  area: [number, number];
}

// Per type, the ranges every polyp of that type draws from. The pattern is a weighted choice so
// that no single cue decides the type.
const LOOKS: Record<PathologyType, TypeLook> = {
  0: {
    redP: 0.25,
    tint: [0.3, 0.8],
    texture: [0.03, 0.1],
    lobedP: 0.1,
    lobes: [2, 3],
    irregularity: [0.02, 0.1],
    patterns: { star: 0.75, tubular: 0.25 },
    pit: [0.15, 0.45],
    spacing: [0.16, 0.24],
    erosionP: 0,
    area: [0.15, 0.35],
  },
  1: {
    redP: 0.7,
    tint: [0.35, 0.9],
    texture: [0.06, 0.16],
    lobedP: 0.35,
    lobes: [2, 4],
    irregularity: [0.05, 0.18],
    patterns: { tubular: 0.7, star: 0.15, branched: 0.15 },
    pit: [0.2, 0.55],
    spacing: [0.14, 0.22],
    erosionP: 0,
    area: [0.15, 0.4],
  },
  2: {
    redP: 0.75,
    tint: [0.4, 0.9],
    texture: [0.08, 0.2],
    lobedP: 0.6,
    lobes: [3, 5],
    irregularity: [0.08, 0.22],
    patterns: { branched: 0.7, tubular: 0.3 },
    pit: [0.25, 0.6],
    spacing: [0.16, 0.26],
    erosionP: 0.1,
    area: [0.2, 0.45],
  },
  3: {
    redP: 0.8,
    tint: [0.5, 1],
    texture: [0.1, 0.24],
    lobedP: 0.5,
    lobes: [2, 5],
    irregularity: [0.15, 0.3],
    patterns: { irregular: 0.75, branched: 0.25 },
    pit: [0.3, 0.7],
    spacing: [0.12, 0.3],
    erosionP: 0.7,
    area: [0.22, 0.5],
  },
};

function samplePathologyPolyp(r: Rng, polypId: string, type: PathologyType): PathologyPolyp {
  const L = LOOKS[type];
  const pats = Object.entries(L.patterns) as [PitPattern, number][];
  return {
    polypId,
    type,
    tint: r.bool(L.redP) ? 'red' : 'pale',
    tintStrength: r.uniform(...L.tint),
    textureStrength: r.uniform(...L.texture),
    lobes: r.bool(L.lobedP) ? r.randint(...L.lobes) : 0,
    irregularity: r.uniform(...L.irregularity),
    pattern:
      pats[
        weighted(
          r,
          pats.map((p) => p[1]),
        )
      ][0],
    pitContrast: r.uniform(...L.pit),
    pitSpacing: r.uniform(...L.spacing),
    erosions: r.bool(L.erosionP) ? r.randint(1, 4) : 0,
    area: r.uniform(...L.area),
  };
}

/** A frame's scene: the painter's wall, light and field of view, with this polyp's look at a fresh view. */
function frameScene(r: Rng, p: PathologyPolyp, width: number, height: number): ColonoscopyScene {
  const scene = sampleColonoscopyScene(r, { width, height, polyps: 1, polypArea: [p.area * 0.7, p.area * 1.3] });
  const base = scene.polyps[0],
    main = base.blobs[0];
  // Close-up views: keep the painter's position, size, aspect and lighting, replace the outline
  // and the lobes by this polyp's (lobulation and irregularity are properties of the lesion).
  const rad = main.r * (p.lobes ? 0.8 : 1);
  const blobs: BlobShape[] = [randomBlob(r, main.cx, main.cy, rad, p.irregularity, main.aspect)];
  for (let k = 0; k < p.lobes; k++) {
    const a = (2 * Math.PI * k) / p.lobes + r.uniform(-0.5, 0.5),
      d = main.r * r.uniform(0.4, 0.7);
    blobs.push(
      randomBlob(r, main.cx + d * Math.cos(a), main.cy + d * Math.sin(a), main.r * r.uniform(0.35, 0.55), 0.15),
    );
  }
  const cells = Math.max(4, Math.min(width, height) / Math.max(2, main.r / 3));
  scene.polyps = [
    {
      ...base,
      blobs,
      tint: p.tint,
      tintStrength: p.tintStrength,
      textureStrength: p.textureStrength,
      textureCells: cells,
    },
  ];
  return scene;
}

/** The patients of the synthetic pathology set (seeded; each item independent of the others). */
export function pathologySet(seed: number, opts: PathologySetOptions): PathologyPatient[] {
  const width = opts.width ?? 128,
    height = opts.height ?? 128;
  const [fLo, fHi] = opts.framesPerPolyp ?? [2, 5];
  if (!(Number.isInteger(fLo) && fLo >= 1 && fHi >= fLo))
    throw new Error(`pathologySet: framesPerPolyp [${fLo}, ${fHi}] is not a valid range`);
  const tw = opts.typeWeights ?? [0.4, 0.35, 0.15, 0.1];
  if (tw.length !== 4 || tw.some((w) => !(w >= 0)) || !(tw.reduce((a, b) => a + b, 0) > 0))
    throw new Error(`pathologySet: typeWeights must be 4 non-negative weights, got [${tw.join(', ')}]`);
  const out: PathologyPatient[] = [];
  for (let p = 0; p < opts.patients; p++) {
    const r = rng(seed, 'pathology-patient', p),
      patientId = `bx${String(p).padStart(4, '0')}`;
    const count = weighted(r, opts.polypsPerPatient ?? [0.75, 0.25]) + 1;
    const polyps: PathologyPolyp[] = [],
      frames: PathologyFrame[] = [];
    for (let k = 0; k < count; k++) {
      const polyp = samplePathologyPolyp(
        rng(seed, 'pathology-polyp', p, k),
        `${patientId}-p${k}`,
        weighted(r, tw) as PathologyType,
      );
      polyps.push(polyp);
      for (let f = 0, n = r.randint(fLo, fHi); f < n; f++) {
        const fr = rng(seed, 'pathology-frame', p, k, f);
        frames.push({
          fileName: `p${k}_${String(f).padStart(2, '0')}.jpg`,
          scene: frameScene(fr, polyp, width, height),
          polyp,
          patternSeed: fr.nextU32(),
        });
      }
    }
    out.push({ patientId, polyps, frames });
  }
  return out;
}

/** Renders a frame: the painter's frame, then the pit pattern and erosions over the polyp's mask. */
export function renderPathologyFrame(f: PathologyFrame): { image: RgbImage; mask: MaskImage } {
  const { image, mask } = renderColonoscopy(f.scene);
  const { width: w, height: h } = image,
    p = f.polyp,
    r = rng(f.patternSeed, 'pits');
  const main = f.scene.polyps[0].blobs[0];
  const s = Math.max(1.5, p.pitSpacing * main.r),
    alpha = new Float32Array(w * h);
  const pw = Math.max(0.6, 0.28 * s); // pit stroke width (px)
  // Jittered grid of pits over the polyp's bounding square; strokes outside the mask are ignored.
  const R = main.r * 1.8;
  for (let y = main.cy - R; y < main.cy + R; y += s)
    for (let x = main.cx - R; x < main.cx + R; x += s) {
      const jx = x + r.uniform(-0.3, 0.3) * s,
        jy = y + r.uniform(-0.3, 0.3) * s;
      const xi = Math.floor(jx),
        yi = Math.floor(jy);
      if (xi < 0 || yi < 0 || xi >= w || yi >= h || !mask.data[yi * w + xi]) continue;
      const dir = r.uniform(0, 2 * Math.PI);
      if (p.pattern === 'star') {
        // A small dot with 3-5 short rays (Kudo II, stellar pits).
        for (let k = 0, n = r.randint(3, 5); k < n; k++) {
          const a = dir + (2 * Math.PI * k) / n,
            l = 0.3 * s;
          strokePath(alpha, w, h, [jx, jy, jx + l * Math.cos(a), jy + l * Math.sin(a)], [pw, 0.3 * pw], 0.9);
        }
      } else if (p.pattern === 'tubular') {
        // Elongated, gently curved pits (Kudo IIIL).
        strokePath(alpha, w, h, randomWalk(r, jx, jy, dir, 3, 0.3 * s, 0.15), [pw, pw, pw, 0.6 * pw], 1);
      } else if (p.pattern === 'branched') {
        // Longer winding grooves with a side branch (Kudo IV, gyrus-like).
        const pts = randomWalk(r, jx, jy, dir, 5, 0.35 * s, 0.35);
        strokePath(
          alpha,
          w,
          h,
          pts,
          pts.filter((_, i) => i % 2 === 0).map(() => pw),
          1,
        );
        if (r.bool(0.5))
          strokePath(
            alpha,
            w,
            h,
            randomWalk(r, pts[4], pts[5], dir + r.uniform(0.6, 1.2), 2, 0.3 * s, 0.2),
            [pw, pw, 0.5 * pw],
            0.9,
          );
      } else {
        // Disrupted: pits of random size and direction, some missing (Kudo V).
        if (r.bool(0.35)) continue;
        const k = r.randint(1, 4),
          width = pw * r.uniform(0.5, 2);
        strokePath(
          alpha,
          w,
          h,
          randomWalk(r, jx, jy, dir, k, r.uniform(0.15, 0.6) * s, 0.8),
          Array.from({ length: k + 1 }, () => width),
          r.uniform(0.5, 1),
        );
      }
    }
  // Erosions: irregular dark, slightly brown patches.
  const erosion = new Float32Array(w * h);
  for (let e = 0; e < p.erosions; e++) {
    const a = r.uniform(0, 2 * Math.PI),
      d = main.r * r.uniform(0, 0.6);
    const b = randomBlob(
      r,
      main.cx + d * Math.cos(a),
      main.cy + d * Math.sin(a),
      main.r * logUniform(r, 0.12, 0.3),
      0.3,
    );
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const dx = x + 0.5 - b.cx,
          dy = y + 0.5 - b.cy,
          q = Math.sqrt(dx * dx + dy * dy) / b.r;
        if (q < 1) erosion[y * w + x] = Math.max(erosion[y * w + x], clamp01((1 - q) * 2));
      }
  }
  const out = new Uint8Array(image.data);
  for (let i = 0; i < w * h; i++) {
    if (!mask.data[i]) continue;
    const a = alpha[i] * p.pitContrast,
      e = 0.55 * erosion[i];
    if (a <= 0 && e <= 0) continue;
    const o = 3 * i;
    // Pits absorb more green/blue than red (they look dark red-brown), erosions are dark brown.
    out[o] = Math.round(out[o] * (1 - 0.55 * a) * (1 - e));
    out[o + 1] = Math.round(out[o + 1] * (1 - 0.8 * a) * Math.max(0, 1 - 1.2 * e));
    out[o + 2] = Math.round(out[o + 2] * (1 - 0.75 * a) * (1 - e));
  }
  return { image: { width: w, height: h, data: out }, mask };
}
