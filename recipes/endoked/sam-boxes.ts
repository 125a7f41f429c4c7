// EndoKED stage 4 (04-sam-pseudo-masks.ts), its box prompts per image (spec §2.3 "CAM -> box -> SAM"):
// - readBoxes: the stage-3 contract boxes.csv (image_path,x0,y0,x1,y1,accepted,reason; pixel
//   coordinates of the original image, x1/y1 exclusive; relative paths against the CSV's folder or
//   --images), accepted rows only;
// - boxesFromMasks: one box per mask component of a Kvasir-SEG-layout folder's train.txt images,
//   with optional SAM-style noise (--jitter), written to <out>/boxes.csv (for measurement, and until
//   the CAM stage provides boxes); the true mask is kept so the pseudo-masks can be scored.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { Rng } from '../../engine/index.ts';
import { parseCsvTable, serialiseCsv } from '../../engine/data/index.ts';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import { readMask } from '../../runtime-node/image.ts';
import { components, jitterBox, type Box } from './sam-kit.ts';
import { BOXES_COLUMNS } from './boxes-csv.ts';

export interface Target {
  path: string;
  boxes: Box[];
  maskPath?: string;
}

/** Boxes per image from boxes.csv (accepted rows), paths resolved against the CSV's folder or --images. */
export function readBoxes(csv: string, imagesDir?: string): Target[] {
  const { rows } = parseCsvTable(readFileSync(csv, 'utf8'), csv, [...BOXES_COLUMNS]);
  const byPath = new Map<string, Target>();
  rows.forEach((r, k) => {
    if (r.accepted.trim() !== '1') return;
    let path = isAbsolute(r.image_path) ? r.image_path : resolve(dirname(csv), r.image_path);
    if (!existsSync(path) && imagesDir)
      path = resolve(imagesDir, isAbsolute(r.image_path) ? basename(r.image_path) : r.image_path);
    if (!existsSync(path))
      throw new Error(
        `${csv}: row ${k + 1}: image "${r.image_path}" not found (resolved to ${path}; pass --images DIR)`,
      );
    const box = [r.x0, r.y0, r.x1, r.y1].map(Number) as Box;
    if (box.some((v) => !Number.isFinite(v)) || box[2] <= box[0] || box[3] <= box[1])
      throw new Error(`${csv}: row ${k + 1}: box ${box.join(',')} is not x0 < x1, y0 < y1`);
    const t = byPath.get(path) ?? { path, boxes: [] };
    t.boxes.push(box);
    byPath.set(path, t);
  });
  return [...byPath.values()];
}

/**
 * One box per mask component (>= 0.1% of the image) of a Kvasir-layout folder's train.txt images; writes
 * <out>/boxes.csv.
 */
export async function boxesFromMasks(
  dir: string,
  out: string,
  jitter: number,
  seed: number,
  limit?: number,
): Promise<Target[]> {
  const records = readKvasirSeg(dir, { split: 'train', log: null }).records.slice(0, limit);
  const rng = new Rng(seed + 2),
    rows: (string | number)[][] = [[...BOXES_COLUMNS]];
  const targets: Target[] = [];
  for (const r of records) {
    const mask = await readMask(r.maskPath!);
    const comps = components(mask).filter((c) => c.area >= 0.001 * mask.width * mask.height);
    if (comps.length === 0) {
      rows.push([r.imagePath, 0, 0, 0, 0, 0, 'no-foreground']);
      continue;
    }
    const boxes = comps.map((c) => jitterBox(c.box, rng, jitter, 20, mask.width, mask.height).map(Math.round) as Box);
    for (const b of boxes) rows.push([r.imagePath, ...b, 1, '']);
    targets.push({ path: r.imagePath, boxes, maskPath: r.maskPath });
  }
  writeFileSync(join(out, 'boxes.csv'), serialiseCsv(rows));
  return targets;
}
