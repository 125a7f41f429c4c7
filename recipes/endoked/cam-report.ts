// EndoKED stage 3 (03-cam.ts): evaluation of the CAM boxes against the true masks, the overlays and
// the report. True masks are read only to measure: box IoU against the union box of each true mask
// at the original size, Dice of CAM > threshold at the CAM size against the nearest-resized mask,
// for the CAM and for Grad-CAM alike; metrics.json summarises them per source (Kvasir-SEG train,
// MIL positives) with the acceptance rate and the rejection reasons of EndoKED's box rule.
// Spec: recipes/endoked/README.md §3 "Produces", recipes/SPEC.md §2.8 (CAM, Grad-CAM).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { maskBox, boxIou, type Box, type BoxDecision } from '../../engine/data/index.ts';
import { readMask, resizeMask, writePng } from '../../runtime-node/image.ts';
import { dice } from './sam-kit.ts';
import { cropMask, type Cached } from './cam-frames.ts';
import type { Frame, Pool } from './cam-pool.ts';
import type { TrainRecord } from './cam-train.ts';

/** One boxed image: its box decision and, where it has a true mask, how the boxes and CAMs match it. */
export interface PerImage {
  stem: string;
  source: string;
  accepted: boolean;
  reason: string;
  gradCamAccepted: boolean;
  iou: number | null;
  dice: number | null;
  gradCamIou: number | null;
  gradCamDice: number | null;
}

/** A frame's true mask: its box in original pixels (null if empty) and the mask on the size² grid. */
export interface Truth {
  box: Box | null;
  small: Uint8Array;
}

/** A CAM's verdict on one image: foreground (CAM > threshold, size²), the box rule's decision and box (original px). */
export interface CamBox {
  fg: Uint8Array;
  decision: BoxDecision;
  box: Box | null;
}

/** The true mask of a frame that has one, cropped like the frame and resized to size². */
export async function readTruth(maskPath: string | undefined, img: Cached, size: number): Promise<Truth | null> {
  if (!maskPath) return null;
  const m = await readMask(maskPath);
  return { box: maskBox(m.data, m.width, m.height), small: resizeMask(cropMask(m, img.crop), size, size).data };
}

export function measure(fr: Frame, cam: CamBox, gc: CamBox | null, truth: Truth | null): PerImage {
  return {
    stem: fr.stem,
    source: fr.source,
    accepted: cam.decision.accepted,
    reason: cam.decision.reason,
    gradCamAccepted: gc?.decision.accepted ?? false,
    iou: truth?.box && cam.box ? boxIou(cam.box, truth.box) : truth?.box ? 0 : null,
    dice: truth ? dice(cam.fg, truth.small) : null,
    gradCamIou: gc && truth?.box ? (gc.box ? boxIou(gc.box, truth.box) : 0) : null,
    gradCamDice: gc && truth ? dice(gc.fg, truth.small) : null,
  };
}

/**
 * The image (upscaled to >= 128 px) with the CAM as a heat map, the box (green accepted, red rejected) and the true box
 * (white).
 */
export function writeOverlay(
  path: string,
  rgb: Uint8Array,
  s: number,
  cam: Float32Array,
  d: BoxDecision,
  truthBox: Box | null,
): void {
  const z = Math.max(1, Math.ceil(128 / s)),
    w = s * z;
  const out = new Uint8Array(w * w * 3);
  const heat = (v: number) =>
    [1.5 - Math.abs(4 * v - 3), 1.5 - Math.abs(4 * v - 2), 1.5 - Math.abs(4 * v - 1)].map(
      (t) => 255 * Math.min(1, Math.max(0, t)),
    );
  for (let y = 0; y < w; y++)
    for (let x = 0; x < w; x++) {
      const p = ((y / z) | 0) * s + ((x / z) | 0),
        h = heat(cam[p]);
      for (let c = 0; c < 3; c++) out[3 * (y * w + x) + c] = Math.round(0.55 * rgb[3 * p + c] + 0.45 * h[c]);
    }
  const rect = (b: Box, col: number[]) => {
    const [x0, y0, x1, y1] = b.map((t) => t * z);
    for (let x = x0; x < x1; x++) for (const y of [y0, y1 - 1]) out.set(col, 3 * (y * w + x));
    for (let y = y0; y < y1; y++) for (const x of [x0, x1 - 1]) out.set(col, 3 * (y * w + x));
  };
  if (truthBox) rect(truthBox, [255, 255, 255]);
  if (d.box) rect(d.box, d.accepted ? [40, 230, 60] : [230, 40, 40]);
  writePng(path, { width: w, height: w, data: out });
}

const avg = (v: (number | null)[]) => {
  const xs = v.filter((t): t is number => t !== null);
  return xs.length ? xs.reduce((a, c) => a + c, 0) / xs.length : null;
};

function summarise(list: PerImage[], gradCam: boolean) {
  const acc = list.filter((r) => r.accepted),
    meas = list.filter((r) => r.iou !== null);
  const reasons: Record<string, number> = {};
  for (const r of list) if (!r.accepted) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
  return {
    images: list.length,
    accepted: acc.length,
    acceptanceRate: list.length ? acc.length / list.length : null,
    rejections: reasons,
    meanBoxIouAccepted: avg(acc.map((r) => r.iou)),
    meanBoxIouAll: avg(meas.map((r) => r.iou)),
    meanCamDice: avg(list.map((r) => r.dice)),
    gradCam: !gradCam
      ? null
      : {
          acceptanceRate: list.length ? list.filter((r) => r.gradCamAccepted).length / list.length : null,
          meanBoxIouAccepted: avg(list.filter((r) => r.gradCamAccepted).map((r) => r.gradCamIou)),
          meanBoxIouAll: avg(meas.map((r) => r.gradCamIou)),
          meanDice: avg(list.map((r) => r.gradCamDice)),
        },
  };
}

export interface ReportInput {
  outDir: string;
  /** The parsed flags, written as they are. */
  flags: { scoresFromTruth: boolean; gradCam: boolean };
  device: string;
  parameters: number;
  rec: TrainRecord;
  pool: Pool;
  per: PerImage[];
}

/** metrics.json and the summary lines of the log. */
export function writeReport(r: ReportInput): void {
  const { flags: f, rec, pool, outDir } = r;
  const metrics = {
    developmentAid: f.scoresFromTruth
      ? "frame scores are the patient set's TRUE frame labels (--scores-from-truth), not stage 2's"
      : null,
    device: r.device,
    flags: f,
    parameters: r.parameters,
    steps: rec.step,
    trainSeconds: Math.round(rec.seconds),
    finalLoss: rec.losses.at(-1) ?? null,
    train: {
      milPositives: pool.milPositives.length,
      milPositivePrecision: pool.milPrecision,
      kvasirPositives: pool.kvasirPositives.length,
      publicPositives: pool.publicPositives.length,
      negatives: pool.negatives.length,
    },
    kvasirTrain: summarise(
      r.per.filter((x) => x.source === 'kvasir'),
      f.gradCam,
    ),
    milPositives: summarise(
      r.per.filter((x) => x.source === 'mil'),
      f.gradCam,
    ),
    note:
      'box IoU against the union box of each true mask at the original size; CAM Dice at the CAM size ' +
      'against the nearest-resized true mask; masks are used only to measure',
    perImage: r.per,
  };
  writeFileSync(join(outDir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  const k = metrics.kvasirTrain;
  if (k.images)
    console.log(
      `Kvasir-SEG train (${k.images}): accepted ${(100 * k.acceptanceRate!).toFixed(1)}%, mean box ` +
        `IoU on accepted ${k.meanBoxIouAccepted?.toFixed(3) ?? 'n/a'} (all ${k.meanBoxIouAll?.toFixed(3)}), ` +
        `CAM Dice ${k.meanCamDice?.toFixed(3)}` +
        (k.gradCam
          ? `; Grad-CAM: accepted ${(100 * k.gradCam.acceptanceRate!).toFixed(1)}%, ` +
            `IoU ${k.gradCam.meanBoxIouAccepted?.toFixed(3) ?? 'n/a'}, Dice ${k.gradCam.meanDice?.toFixed(3)}`
          : '') +
        `; rejections ${JSON.stringify(k.rejections)}`,
    );
  const m = metrics.milPositives;
  console.log(`MIL positives (${m.images}): accepted ${m.images ? (100 * m.acceptanceRate!).toFixed(1) : 'n/a'}%`);
  console.log(`wrote ${outDir}: boxes.csv, cams/, cam.safetensors, metrics.json, loss.png`);
}
