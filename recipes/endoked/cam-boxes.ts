// EndoKED stage 3 (03-cam.ts): CAMs -> boxes. The trained classifier's multi-scale + flip CAM (no
// grad, models/toco.ts multiScaleCam) is thresholded and turned into one box per image by EndoKED's
// rule (engine/data/boxes.ts endokedBox), mapped back through the FOV crop to the original pixels
// for boxes.csv; Grad-CAM (single scale, final-LN tokens) is boxed the same way for comparison. Each
// image is measured against its true mask (cam-report.ts); a few get an overlay.
// Spec: recipes/endoked/README.md §3 "CAM for boxes", "Box rule"; recipes/SPEC.md §2.3, §2.8.
// Reference: zwyang6/ENDOKED datasets/data_processing_refining/a3_generate_pseulabel_from_SAM_byCAM.py.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tidy, noGrad, tensor, interpolate } from '../../engine/index.ts';
import { serialiseCsv, endokedBox, thresholdMask } from '../../engine/data/index.ts';
import { multiScaleCam, gradCam, type TocoCam } from '../../models/toco.ts';
import { Progress } from '../../runtime-node/progress.ts';
import type { Frame, Pool } from './cam-pool.ts';
import { toChw, toOriginal, toCam, type Cached } from './cam-frames.ts';
import { measure, readTruth, writeOverlay, type CamBox, type PerImage } from './cam-report.ts';
import { BOXES_COLUMNS } from './boxes-csv.ts';

export interface BoxOptions {
  size: number;
  camScales: number[];
  camThreshold: number;
  evalBatch: number;
  boxesFor: 'both' | 'kvasir' | 'mil';
  boxLimit: number;
  gradCam: boolean;
  overlays: number;
}

/** The images that get boxes: Kvasir-SEG train, then the MIL positives, each at most boxLimit, evenly spaced. */
export function imagesToBox(f: BoxOptions, pool: Pool): Frame[] {
  const spaced = <T>(xs: T[]) =>
    f.boxLimit && xs.length > f.boxLimit
      ? Array.from({ length: f.boxLimit }, (_, k) => xs[Math.floor((k * xs.length) / f.boxLimit)])
      : xs;
  return [
    ...(f.boxesFor === 'mil' ? [] : spaced(pool.kvasir)),
    ...(f.boxesFor === 'kvasir' ? [] : spaced(pool.milPositives)),
  ];
}

/** Boxes every image (boxes.csv, cams/ overlays evenly spaced over the list); returns each image's measures. */
export async function boxAndMeasure(
  f: BoxOptions,
  model: TocoCam,
  boxImages: readonly Frame[],
  cache: Map<string, Cached>,
  outDir: string,
): Promise<PerImage[]> {
  const S = f.size;
  const nOverlays = Math.min(f.overlays, boxImages.length);
  const overlayAt = new Set(
    Array.from({ length: nOverlays }, (_, k) => Math.floor((k * boxImages.length) / nOverlays)),
  );
  const rows: (string | number)[][] = [[...BOXES_COLUMNS]];
  const per: PerImage[] = [];
  const bar = new Progress({ total: boxImages.length, label: 'boxes', unit: 'img' });
  mkdirSync(join(outDir, 'cams'), { recursive: true });
  for (let i = 0; i < boxImages.length; i += f.evalBatch) {
    const batch = boxImages.slice(i, i + f.evalBatch);
    const x = tensor(
      toChw(
        batch.map((fr) => cache.get(fr.path)!.data),
        S,
      ),
      [batch.length, 3, S, S],
    );
    const cam = multiScaleCam(model, x, { scales: f.camScales }).cam;
    // Grad-CAM (single scale, final-LN tokens), upsampled and normalised like the CAM, for comparison.
    const gc = f.gradCam
      ? tidy(() => {
          const g = gradCam(model, x, { layer: 'final' });
          return noGrad(() => interpolate(g, { size: [S, S], mode: 'bilinear', alignCorners: false }));
        })
      : null;
    const [camV, gcV] = [(await cam.data()) as Float32Array, gc ? ((await gc.data()) as Float32Array) : null];
    cam.dispose();
    gc?.dispose();
    x.dispose();
    for (let k = 0; k < batch.length; k++) {
      const fr = batch[k],
        img = cache.get(fr.path)!;
      const c = camV.subarray(k * S * S, (k + 1) * S * S);
      const boxOf = (v: Float32Array): CamBox => {
        const fg = thresholdMask(v, f.camThreshold),
          decision = endokedBox(fg, S, S);
        return { fg, decision, box: decision.box ? toOriginal(decision.box, S, img.crop) : null };
      };
      const b = boxOf(c);
      rows.push([fr.path, ...(b.box ?? ['', '', '', '']), b.decision.accepted ? 1 : 0, b.decision.reason]);
      const truth = await readTruth(fr.maskPath, img, S);
      const g = gcV ? boxOf(minMax(gcV.subarray(k * S * S, (k + 1) * S * S))) : null;
      per.push(measure(fr, b, g, truth));
      if (overlayAt.has(i + k))
        writeOverlay(
          join(outDir, 'cams', `${fr.stem}.png`),
          img.data,
          S,
          c,
          b.decision,
          truth?.box ? toCam(truth.box, S, img.crop) : null,
        );
    }
    bar.tick(batch.length);
  }
  writeFileSync(join(outDir, 'boxes.csv'), serialiseCsv(rows));
  return per;
}

/** (v - min) / (max - min + 1e-5): Grad-CAM on the CAM's [0, 1] scale. */
function minMax(v: Float32Array): Float32Array {
  let lo = Infinity,
    hi = -Infinity;
  for (const t of v) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return v.map((t) => (t - lo) / (hi - lo + 1e-5));
}
