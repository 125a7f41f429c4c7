// Synthetic capsule-endoscopy frames for the ten Capsule Vision 2024 classes (spec §1.1), the
// project's default stand-in for CE24 / EndoExtend24 when no real data is present.
// Class names and indices follow the challenge's class_mapping.json ([R1]
// datasets/cv24/original_70_30/class_mapping.json). The class balance follows CE24's training
// set (Normal 76%, Worms 0.4%, [R1] datasets/cv24/*/README) with normal set to 70%: the other
// classes keep CE24's relative frequencies (Angioectasia 1154, Bleeding 834, Erosion 2694,
// Erythema 691, Foreign Body 792, Lymphangiectasia 796, Polyp 1162, Ulcer 663, Worms 158).
// A frame: small-bowel mucosa (orange-pink, villous grain, circular folds, sometimes bubbles or
// bile) -> the class's cue -> capsule illumination -> circular field of view, black corners.
// Every frame of one patient shares that patient's mucosa tone, so a patient-wise split matters.
import { shuffle } from '../../engine/index.ts';
import { rng, weighted, type Rng } from '../../engine/data/index.ts';
import {
  Canvas,
  blurCanvas,
  clamp01,
  forEachInBlob,
  mix,
  noiseField,
  paint,
  randomBlob,
  randomWalk,
  strokePath,
  type Rgb,
  type RgbImage,
} from './raster.ts';

export const CE24_CLASSES = [
  'angioectasia',
  'bleeding',
  'erosion',
  'erythema',
  'foreign-body',
  'lymphangiectasia',
  'normal-mucosa',
  'polyp',
  'ulcer',
  'worms',
] as const;
export type CapsuleClass = (typeof CE24_CLASSES)[number];

/** Default class probabilities, in CE24_CLASSES order (sum 1). */
export const CAPSULE_CLASS_WEIGHTS: readonly number[] = (() => {
  const ce24 = [1154, 834, 2694, 691, 792, 796, 0, 1162, 663, 158];
  const abnormal = ce24.reduce((a, b) => a + b, 0);
  return ce24.map((c, k) => (k === 6 ? 0.7 : (0.3 * c) / abnormal));
})();

export interface CapsuleScene {
  seed: number;
  width: number;
  height: number;
  label: number;
  /** Mucosa tone in [0, 1] (orange to pink), shared by a patient's frames. */
  tone: number;
}

/** Renders one capsule frame (8-bit RGB). */
export function renderCapsule(scene: CapsuleScene): RgbImage {
  const { width: w, height: h, seed } = scene,
    s = Math.min(w, h) / 224;
  if (!(w >= 16 && h >= 16)) throw new Error(`capsule: frame size ${w}x${h} is too small (>= 16x16)`);
  if (!(scene.label >= 0 && scene.label < CE24_CLASSES.length))
    throw new Error(`capsule: label ${scene.label} is not in 0..9`);
  const c = new Canvas(w, h),
    r = rng(seed, 'mucosa');
  const base = mix([0.8, 0.5, 0.28], [0.86, 0.52, 0.44], scene.tone);
  const low = noiseField(r, w, h, 3, 2),
    villi = noiseField(r, w, h, 48 * Math.max(s, 0.5), 1);
  for (let i = 0; i < w * h; i++) {
    const v = 1 + 0.14 * low[i] + 0.07 * villi[i];
    c.r[i] = base[0] * v;
    c.g[i] = (base[1] - 0.03 * low[i]) * v;
    c.b[i] = base[2] * v;
  }
  // Circular folds: soft darker curves.
  const folds = new Float32Array(w * h);
  for (let k = r.randint(0, 4); k > 0; k--) {
    const pts = randomWalk(r, r.uniform(0, w), r.uniform(0, h), r.uniform(0, 6.3), 24, 6 * s, 0.05);
    strokePath(
      folds,
      w,
      h,
      pts,
      pts.map(() => r.uniform(3, 6) * s),
      0.5,
    );
  }
  paint(c, folds, [0.45, 0.22, 0.12], 0.5);
  if (r.bool(0.2)) bile(c, r, s);
  if (r.bool(0.25)) bubbles(c, r, s);
  blurCanvas(c, 1);
  CUES[CE24_CLASSES[scene.label]](c, rng(seed, 'cue'), s);
  // Capsule LEDs: bright centre, dark periphery; a dark lumen somewhere; circular field of view.
  const L = rng(seed, 'light'),
    R = (Math.min(w, h) / 2) * L.uniform(0.94, 1.02),
    cx = w / 2,
    cy = h / 2;
  const lx = L.uniform(0.2, 0.8) * w,
    ly = L.uniform(0.2, 0.8) * h,
    lr = L.bool(0.5) ? L.uniform(8, 22) * s : 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x,
        d = Math.sqrt((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) / R;
      if (d >= 1) {
        c.r[i] = c.g[i] = c.b[i] = 0;
        continue;
      }
      c.scale(i, 1.08 - 0.55 * d * d * d);
      if (lr > 0) {
        const dl = Math.sqrt((x - lx) ** 2 + (y - ly) ** 2) / lr;
        if (dl < 2.5) c.blend(i, [0.12, 0.05, 0.02], 0.8 * (1 - dl / 2.5) ** 1.5);
      }
    }
  return c.toRgb();
}

type Cue = (c: Canvas, r: Rng, s: number) => void;

/** A random point inside the central part of the field of view. */
function spot(c: Canvas, r: Rng, frac = 0.55): [number, number] {
  const a = r.uniform(0, 2 * Math.PI),
    d = (Math.sqrt(r.random()) * frac * Math.min(c.width, c.height)) / 2;
  return [c.width / 2 + d * Math.cos(a), c.height / 2 + d * Math.sin(a)];
}

const CUES: Record<CapsuleClass, Cue> = {
  'normal-mucosa': () => {},
  // Small bright-red spider patches: a saturated core, radiating thin vessels, a faint halo.
  angioectasia: (c, r, s) => {
    for (let k = r.randint(1, 3); k > 0; k--) {
      const [x, y] = spot(c, r),
        rad = r.uniform(3, 7) * s + 0.6,
        legs = new Float32Array(c.width * c.height);
      forEachInBlob(randomBlob(r, x, y, rad * 2.2, 0.2), c.width, c.height, 1, (i, _x, _y, q) =>
        c.blend(i, [0.85, 0.2, 0.18], 0.3 * (1 - q)),
      );
      for (let m = r.randint(4, 8); m > 0; m--) {
        const pts = randomWalk(r, x, y, r.uniform(0, 6.3), r.randint(3, 6), 2 * s + 0.3, 0.3);
        strokePath(
          legs,
          c.width,
          c.height,
          pts,
          pts.map(() => 0.9 * s + 0.3),
        );
      }
      paint(c, legs, [0.8, 0.06, 0.1], 0.75);
      forEachInBlob(randomBlob(r, x, y, rad, 0.2), c.width, c.height, 1, (i, _x, _y, q) =>
        c.blend(i, [0.9, 0.06, 0.1], q < 0.7 ? 0.95 : (0.95 * (1 - q)) / 0.3),
      );
    }
  },
  // Dark red pools of blood, glossy, over a reddish haze.
  bleeding: (c, r, s) => {
    const haze = r.uniform(0.12, 0.35);
    for (let i = 0; i < c.width * c.height; i++) c.blend(i, [0.6, 0.08, 0.05], haze);
    const tex = noiseField(r, c.width, c.height, 6, 1);
    for (let k = r.randint(1, 2); k > 0; k--) {
      const [x, y] = spot(c, r, 0.5);
      forEachInBlob(
        randomBlob(r, x, y, r.uniform(25, 60) * s, 0.3, r.uniform(0.6, 1.6)),
        c.width,
        c.height,
        1,
        (i, _x, _y, q) => c.blend(i, [0.42 + 0.08 * tex[i], 0.03, 0.03], q < 0.8 ? 0.95 : (0.95 * (1 - q)) / 0.2),
      );
    }
    for (let k = r.randint(2, 6); k > 0; k--) {
      const [x, y] = spot(c, r, 0.5);
      forEachInBlob(
        randomBlob(r, x, y, r.uniform(0.8, 2.5) * s + 0.3, 0.1, r.uniform(0.3, 1)),
        c.width,
        c.height,
        1,
        (i) => c.blend(i, [1, 0.95, 0.9], 0.9),
      );
    }
  },
  // Small whitish shallow defects with red rims.
  erosion: (c, r, s) => {
    for (let k = r.randint(1, 4); k > 0; k--) {
      const [x, y] = spot(c, r);
      forEachInBlob(
        randomBlob(r, x, y, r.uniform(5, 11) * s + 0.8, 0.25, r.uniform(0.6, 1.6)),
        c.width,
        c.height,
        1.6,
        (i, _x, _y, q) => {
          if (q < 0.75) c.blend(i, [0.95, 0.92, 0.8], 0.85);
          else c.blend(i, [0.82, 0.16, 0.12], 0.75 * clamp01((1.6 - q) / 0.6));
        },
      );
    }
  },
  // Diffuse redness over a large soft region.
  erythema: (c, r, s) => {
    for (let k = r.randint(1, 2); k > 0; k--) {
      const [x, y] = spot(c, r, 0.4);
      forEachInBlob(randomBlob(r, x, y, r.uniform(35, 70) * s, 0.3), c.width, c.height, 1, (i, _x, _y, q) =>
        c.blend(i, [0.92, 0.18, 0.16], 0.6 * Math.sqrt(1 - q)),
      );
    }
  },
  // A grey or green geometric object (a rod or a bent tube) with cylindrical shading.
  'foreign-body': (c, r, s) => {
    const col: Rgb = r.bool(0.5) ? [0.6, 0.62, 0.6] : [0.3, 0.55, 0.32];
    const [x, y] = spot(c, r, 0.35),
      a = r.uniform(0, Math.PI),
      len = r.uniform(60, 140) * s,
      wd = r.uniform(14, 28) * s;
    const pts = [
      x - (len / 2) * Math.cos(a),
      y - (len / 2) * Math.sin(a),
      x + (len / 2) * Math.cos(a),
      y + (len / 2) * Math.sin(a),
    ];
    if (r.bool(0.4)) {
      const b = a + r.uniform(0.5, 1.2);
      pts.push(pts[2] + len * 0.4 * Math.cos(b), pts[3] + len * 0.4 * Math.sin(b));
    }
    const body = new Float32Array(c.width * c.height),
      core = new Float32Array(c.width * c.height),
      shine = new Float32Array(c.width * c.height);
    strokePath(
      body,
      c.width,
      c.height,
      pts,
      pts.map(() => wd),
    );
    strokePath(
      core,
      c.width,
      c.height,
      pts,
      pts.map(() => wd * 0.6),
    );
    strokePath(
      shine,
      c.width,
      c.height,
      pts,
      pts.map(() => Math.max(1, wd * 0.15)),
    );
    paint(c, body, [col[0] * 0.55, col[1] * 0.55, col[2] * 0.55]);
    paint(c, core, col);
    paint(c, shine, [0.95, 0.97, 0.95], 0.8);
  },
  // Scattered small white dots, clustered.
  lymphangiectasia: (c, r, s) => {
    for (let k = r.randint(1, 2); k > 0; k--) {
      const [x, y] = spot(c, r, 0.45),
        spread = r.uniform(15, 40) * s;
      for (let m = r.randint(25, 70); m > 0; m--) {
        const b = randomBlob(r, x + r.normal(0, spread), y + r.normal(0, spread), r.uniform(1, 2.5) * s + 0.4, 0.1);
        forEachInBlob(b, c.width, c.height, 1.3, (i, _x, _y, q) =>
          c.blend(i, [0.98, 0.96, 0.88], q < 0.8 ? 0.9 : (0.9 * (1.3 - q)) / 0.5),
        );
      }
    }
  },
  // A raised round lesion: dome shading, darker rim, a specular spot.
  polyp: (c, r, s) => {
    const [x, y] = spot(c, r, 0.5),
      red = r.uniform(0.08, 0.3);
    const lx = r.uniform(-0.5, 0.5),
      ly = r.uniform(-0.5, 0.5),
      ll = Math.sqrt(lx * lx + ly * ly + 1);
    const b = randomBlob(r, x, y, r.uniform(12, 35) * s + 2, 0.15, r.uniform(0.75, 1.3));
    let mr = 0,
      mg = 0,
      mb = 0,
      cnt = 0; // occluding base colour: the mean of the mucosa under it
    forEachInBlob(b, c.width, c.height, 1, (i) => {
      mr += c.r[i];
      mg += c.g[i];
      mb += c.b[i];
      cnt++;
    });
    if (cnt === 0) return;
    mr /= cnt;
    mg /= cnt;
    mb /= cnt;
    forEachInBlob(b, c.width, c.height, 1, (i, px, py, q) => {
      const d = Math.sqrt((px - x) ** 2 + (py - y) ** 2) || 1,
        nx = (q * (px - x)) / d,
        ny = (q * (py - y)) / d,
        z = Math.sqrt(1 - q * q);
      const ndl = Math.max(0, (nx * lx + ny * ly + z) / ll),
        v = (0.72 + 0.5 * ndl) * (1 - 0.35 * clamp01((q - 0.7) / 0.3));
      const sp = 0.9 * ndl ** 120;
      c.blend(i, [(mr + red) * v + sp, mg * (1 - red) * v + sp, mb * (1 - red) * v + sp], q < 0.9 ? 1 : (1 - q) * 10);
    });
  },
  // A larger white-yellow fibrin patch with a red halo.
  ulcer: (c, r, s) => {
    const [x, y] = spot(c, r, 0.45),
      tex = noiseField(r, c.width, c.height, 20, 1);
    forEachInBlob(
      randomBlob(r, x, y, r.uniform(12, 30) * s + 2, 0.3, r.uniform(0.6, 1.6)),
      c.width,
      c.height,
      1.7,
      (i, _x, _y, q) => {
        if (q < 0.85) c.blend(i, [0.93 + 0.04 * tex[i], 0.85 + 0.06 * tex[i], 0.52], 0.92);
        else c.blend(i, [0.8, 0.14, 0.1], 0.75 * clamp01((1.7 - q) / 0.85));
      },
    );
  },
  // Thin, long, curvy pale shapes with a darker outline.
  worms: (c, r, s) => {
    for (let k = r.randint(1, 3); k > 0; k--) {
      const [x, y] = spot(c, r, 0.5),
        wd = r.uniform(3.5, 6) * s + 0.6;
      const pts = randomWalk(r, x, y, r.uniform(0, 6.3), r.randint(25, 45), 3 * s + 0.3, 0.12);
      const n = pts.length / 2,
        taper = pts
          .filter((_, j) => j % 2 === 0)
          .map((_, j) => wd * Math.min(1, (2.5 * Math.min(j, n - 1 - j)) / n + 0.3));
      const outline = new Float32Array(c.width * c.height),
        body = new Float32Array(c.width * c.height);
      strokePath(
        outline,
        c.width,
        c.height,
        pts,
        taper.map((t) => t + 2 * s),
      );
      strokePath(body, c.width, c.height, pts, taper);
      paint(c, outline, [0.45, 0.3, 0.2], 0.5);
      paint(c, body, [0.94, 0.9, 0.82], 0.95);
    }
  },
};

/** Greenish-yellow bile over part of the frame (a distractor in every class). */
function bile(c: Canvas, r: Rng, s: number): void {
  forEachInBlob(
    randomBlob(r, r.uniform(0, c.width), r.uniform(0, c.height), r.uniform(40, 90) * s, 0.3),
    c.width,
    c.height,
    1,
    (i, _x, _y, q) => c.blend(i, [0.62, 0.6, 0.2], 0.35 * Math.sqrt(1 - q)),
  );
}

/** Transparent bubbles with bright rims (a distractor in every class). */
function bubbles(c: Canvas, r: Rng, s: number): void {
  const [x, y] = [r.uniform(0, c.width), r.uniform(0, c.height)],
    spread = r.uniform(10, 35) * s;
  for (let m = r.randint(4, 15); m > 0; m--) {
    const b = randomBlob(r, x + r.normal(0, spread), y + r.normal(0, spread), r.uniform(3, 10) * s + 1, 0.05);
    forEachInBlob(b, c.width, c.height, 1, (i, _x, _y, q) => c.blend(i, [0.95, 0.92, 0.8], q > 0.8 ? 0.55 : 0.08));
  }
}

// ---- the synthetic capsule set -------------------------------------------------------------

/**
 * Two synthetic source datasets, each with its own label vocabulary (original_class), so the
 * EndoExtend24-style class mapping (spec §1.1) has something to map. The vocabularies borrow
 * Kvasir-Capsule's and SEE-AI's spellings; labels mapped to null are dropped by the mapping.
 */
export const CAPSULE_SOURCES: Record<string, Record<string, CapsuleClass | null>> = {
  'synth-kc': {
    Angiectasia: 'angioectasia',
    'Blood - fresh': 'bleeding',
    'Blood - hematin': 'bleeding',
    Erosion: 'erosion',
    Erythema: 'erythema',
    'Foreign body': 'foreign-body',
    Lymphangiectasia: 'lymphangiectasia',
    'Normal clean mucosa': 'normal-mucosa',
    Polyp: 'polyp',
    Ulcer: 'ulcer',
    Parasite: 'worms',
    'Ileocecal valve': null,
    Pylorus: null,
    'Reduced mucosal view': null,
    'Ampulla of Vater': null,
  },
  'synth-see': {
    angiodysplasia: 'angioectasia',
    bleeding: 'bleeding',
    erosion: 'erosion',
    redness: 'erythema',
    foreign_body: 'foreign-body',
    lymphangiectasia: 'lymphangiectasia',
    normal: 'normal-mucosa',
    polyp: 'polyp',
    ulcer: 'ulcer',
    worm: 'worms',
    stenosis: null,
    villous_edema: null,
  },
};

export interface CapsuleItem {
  index: number;
  label: number;
  className: CapsuleClass;
  patientId: string;
  dataset: string;
  originalClass: string;
  fileName: string;
  scene: CapsuleScene;
}

export interface CapsuleSetOptions {
  n: number;
  width?: number;
  height?: number;
  /** Class probabilities in CE24_CLASSES order (default CAPSULE_CLASS_WEIGHTS). */
  weights?: readonly number[];
  /** Frames per patient, inclusive range (default [3, 12]). */
  framesPerPatient?: readonly [number, number];
  /** Every class gets at least this many frames when n allows (default 1). */
  minPerClass?: number;
}

/**
 * Splits n into integer counts proportional to weights (largest remainder); then, while
 * n >= min * weights.length, classes below `min` are raised to it, taking from the largest.
 */
export function allocate(n: number, weights: readonly number[], min = 0): number[] {
  const k = weights.length,
    total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (n * w) / total),
    counts = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let left = n - counts.reduce((a, b) => a + b, 0), j = 0; left > 0; left--, j++) counts[order[j % k][1]]++;
  if (n >= min * k) {
    for (let i = 0; i < k; i++) {
      while (counts[i] < min) {
        const big = counts.indexOf(Math.max(...counts));
        counts[big]--;
        counts[i]++;
      }
    }
  }
  return counts;
}

/** The items of the synthetic capsule set (frames are rendered on demand by renderCapsule). */
export function capsuleSet(seed: number, opts: CapsuleSetOptions): CapsuleItem[] {
  const width = opts.width ?? 224,
    height = opts.height ?? 224,
    [fLo, fHi] = opts.framesPerPatient ?? [3, 12];
  if (!(fLo >= 1 && fHi >= fLo)) throw new Error(`capsuleSet: framesPerPatient [${fLo}, ${fHi}] is not a valid range`);
  const counts = allocate(opts.n, opts.weights ?? CAPSULE_CLASS_WEIGHTS, opts.minPerClass ?? 1);
  const r = rng(seed, 'capsule-set');
  const labels = shuffle(
    counts.flatMap((c, k) => Array<number>(c).fill(k)),
    r,
  );
  const sources = Object.keys(CAPSULE_SOURCES);
  const items: CapsuleItem[] = [];
  for (let i = 0, p = 0; i < labels.length; p++) {
    const dataset = sources[weighted(r, [0.6, 0.4])],
      tone = r.random();
    const patientId = `${dataset}-p${String(p).padStart(4, '0')}`;
    for (let m = Math.min(r.randint(fLo, fHi), labels.length - i); m > 0; m--, i++) {
      const label = labels[i],
        className = CE24_CLASSES[label];
      const vocab = Object.entries(CAPSULE_SOURCES[dataset])
        .filter(([, v]) => v === className)
        .map(([o]) => o);
      items.push({
        index: i,
        label,
        className,
        patientId,
        dataset,
        originalClass: r.pick(vocab),
        fileName: `cap-${String(i).padStart(6, '0')}.jpg`,
        scene: { seed: hashItem(seed, i), width, height, label, tone },
      });
    }
  }
  return items;
}

const hashItem = (seed: number, i: number) => rng(seed, 'capsule', i).nextU32();
