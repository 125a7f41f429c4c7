// The files of EndoKED stage 6's refinement rounds (06-refine.ts; spec §2.3 "Iteration loop"):
// the pool of candidate images (every image_path of stage 3's boxes.csv), where their true masks
// are (a patient set's frames.csv, a Kvasir-SEG folder; read only to MEASURE label Dice, never to
// train), and a round's training folder in the Kvasir-SEG layout that 05-segmenter.ts reads:
// accepted labels as the train split, the test split linked unchanged from stage 4's folder.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseCsvTable, parseSplitFile } from '../../engine/data/index.ts';
import { FlagError } from '../../runtime-node/flags.ts';
import { readMask, writeMaskPng } from '../../runtime-node/image.ts';
import { uniqueIds } from './pipeline.ts';
import { maskDice, type LabelRow, type PoolItem } from './refine-labels.ts';

/** The real path (symlinked images resolve to the original), or the absolute path when it does not exist. */
const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
};

/** Image path (real path) -> true-mask path, from a patient set's frames.csv and a Kvasir-SEG folder. */
export function truthIndex(setDir?: string, kvasirDir?: string): Map<string, string> {
  const out = new Map<string, string>();
  if (setDir) {
    const csv = join(setDir, 'frames.csv');
    if (!existsSync(csv)) throw new FlagError(`06-refine: --set "${setDir}" has no frames.csv`);
    for (const r of parseCsvTable(readFileSync(csv, 'utf8'), csv, ['frame_path', 'mask_path']).rows) {
      if (r.mask_path) out.set(real(resolve(setDir, r.frame_path)), resolve(setDir, r.mask_path));
    }
  }
  if (kvasirDir) {
    const masks = new Map(
      readdirSync(join(kvasirDir, 'masks')).map((n) => [basename(n, extname(n)), join(kvasirDir, 'masks', n)]),
    );
    for (const n of readdirSync(join(kvasirDir, 'images'))) {
      const m = masks.get(basename(n, extname(n)));
      if (m) out.set(real(join(kvasirDir, 'images', n)), m);
    }
  }
  return out;
}

/** Every distinct image_path of a stage-3 boxes.csv (relative paths against the CSV's folder). */
export function readPool(boxesCsv: string, truth: Map<string, string>): PoolItem[] {
  const { rows } = parseCsvTable(readFileSync(boxesCsv, 'utf8'), boxesCsv, ['image_path']);
  const paths = [...new Set(rows.map((r) => resolve(dirname(boxesCsv), r.image_path)))];
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`${boxesCsv}: ${missing.length} image(s) do not exist, e.g. ${missing[0]}`);
  const ids = uniqueIds(paths);
  return paths.map((imagePath, i) => ({ imagePath, id: ids[i], truthMask: truth.get(real(imagePath)) }));
}

/** A Kvasir-SEG layout folder's split ids and image/mask files by id. */
export function readLayout(dir: string) {
  const files = (sub: string) =>
    new Map(readdirSync(join(dir, sub)).map((n) => [basename(n, extname(n)), join(dir, sub, n)]));
  const ids = (name: string) => parseSplitFile(readFileSync(join(dir, name), 'utf8'), join(dir, name));
  return { train: ids('train.txt'), test: ids('test.txt'), images: files('images'), masks: files('masks') };
}

/** Writes a round's training folder: accepted labels as train ids, test ids/images/masks linked from `testFrom`. */
export function writeRoundData(
  dir: string,
  rows: readonly LabelRow[],
  testFrom: string,
): { train: string[]; test: string[] } {
  const src = readLayout(testFrom);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'images'), { recursive: true });
  mkdirSync(join(dir, 'masks'), { recursive: true });
  const testReal = new Set(src.test.map((id) => real(src.images.get(id)!)));
  const train: string[] = [];
  for (const r of rows) {
    if (!r.relabel.decision.accepted) continue;
    if (src.test.includes(r.item.id) || testReal.has(real(r.item.imagePath)))
      throw new Error(
        `06-refine: candidate "${r.item.imagePath}" is a test image of ${testFrom}; test images are never trained on`,
      );
    symlinkSync(real(r.item.imagePath), join(dir, 'images', r.item.id + extname(r.item.imagePath)));
    writeMaskPng(join(dir, 'masks', `${r.item.id}.png`), { width: r.width, height: r.height, data: r.relabel.mask });
    train.push(r.item.id);
  }
  for (const id of src.test) {
    const img = src.images.get(id),
      mask = src.masks.get(id);
    if (!img || !mask)
      throw new Error(`06-refine: ${testFrom}/test.txt lists "${id}" without images/ and masks/ files`);
    symlinkSync(real(img), join(dir, 'images', basename(img)));
    symlinkSync(real(mask), join(dir, 'masks', basename(mask)));
  }
  writeFileSync(join(dir, 'train.txt'), train.join('\n') + (train.length ? '\n' : ''));
  writeFileSync(join(dir, 'test.txt'), src.test.join('\n') + '\n');
  return { train, test: src.test };
}

/** Mean Dice of a Kvasir-layout folder's train masks against the true masks of the same images. */
export async function layoutDice(
  dir: string,
  pool: readonly PoolItem[],
  truth: Map<string, string>,
): Promise<{ mean: number | null; n: number }> {
  const lay = readLayout(dir),
    byId = new Map(pool.map((p) => [p.id, p]));
  const scores: number[] = [];
  for (const id of lay.train) {
    const image = lay.images.get(id),
      label = lay.masks.get(id);
    if (!image || !label) continue;
    const t = truth.get(real(image)) ?? byId.get(id)?.truthMask; // symlinked images resolve to the original
    if (!t) continue;
    const m = await readMask(label);
    scores.push(await maskDice(m.data, m.width, m.height, t));
  }
  return { mean: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null, n: scores.length };
}
