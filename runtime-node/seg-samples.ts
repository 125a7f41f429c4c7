// Decoding a segmentation split's images and masks, and the whole-split checks run before
// training (sizes, truncated files); the readers that list the records are in datasets.ts.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { type MaskImage, type RgbImage } from '../engine/data/index.ts';
import { decodeImage, imageSize, readMask, resizeImage, resizeMask } from './image.ts';
import type { ImageRecord } from './datasets.ts';

// ---- decoding ---------------------------------------------------------------------------------

export interface SegSample {
  image: RgbImage;
  mask: MaskImage;
  record: ImageRecord;
}

/**
 * Decodes an image and its mask; a size mismatch is an error naming both files. With `size`
 * ([width, height]) both are then resized (image: linear; mask: nearest).
 */
export async function loadSegSample(record: ImageRecord, size?: readonly [number, number]): Promise<SegSample> {
  if (!record.maskPath) throw new Error(`loadSegSample: record "${record.imagePath}" has no mask`);
  let [image, mask] = await Promise.all([decodeImage(record.imagePath), readMask(record.maskPath)]);
  if (image.width !== mask.width || image.height !== mask.height) {
    throw new Error(
      `size mismatch: image "${record.imagePath}" is ${image.width}x${image.height} but its mask ` +
        `"${record.maskPath}" is ${mask.width}x${mask.height}`,
    );
  }
  if (size) {
    image = await resizeImage(image, size[0], size[1]);
    mask = resizeMask(mask, size[0], size[1]);
  }
  return { image, mask, record };
}

/** Every pair whose image and mask headers disagree on the size (reads headers only). */
export async function findSizeMismatches(records: readonly ImageRecord[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < records.length; i += 16) {
    await Promise.all(
      records.slice(i, i + 16).map(async (r) => {
        if (!r.maskPath) {
          out.push(`${r.imagePath}: no mask`);
          return;
        }
        const [a, b] = await Promise.all([imageSize(r.imagePath), imageSize(r.maskPath)]);
        if (a.width !== b.width || a.height !== b.height)
          out.push(`${r.imagePath} is ${a.width}x${a.height} but ${r.maskPath} is ${b.width}x${b.height}`);
      }),
    );
  }
  return out.sort();
}

export interface SplitCheck {
  /** One line per bad file (missing, undecodable, image/mask size mismatch), sorted. */
  problems: string[];
  /** Masks decoded: all of them ('full'), or up to 32 spread over the split ('headers'). */
  masksRead: number;
  /** Of those, the masks without a foreground pixel (all empty: a format problem, e.g. bit depth). */
  emptyMasks: number;
}

/**
 * Checks every record of a segmentation split before training, so a bad file fails the run at
 * start (naming every bad file at once) instead of at the batch that holds it. 'headers' reads
 * sizes from the file headers and checks that JPEG/PNG files end with their end marker (a
 * truncated download has a good header); 'full' decodes every image and mask (finds corruption
 * inside a file too) and counts empty masks.
 */
export async function checkSegSplit(
  records: readonly ImageRecord[],
  mode: 'full' | 'headers' = 'full',
): Promise<SplitCheck> {
  const problems: string[] = [];
  let emptyMasks = 0,
    masksRead = 0;
  const one = async (r: ImageRecord): Promise<void> => {
    if (!r.maskPath) {
      problems.push(`${r.imagePath}: no mask`);
      return;
    }
    // Headers mode: a file cut short is reported as such (one line per bad file), not read further.
    const cut = mode === 'headers' ? [truncation(r.imagePath), truncation(r.maskPath)] : [null, null];
    const [a, b] = await Promise.allSettled(
      mode === 'full'
        ? [decodeImage(r.imagePath), readMask(r.maskPath)]
        : [
            cut[0] ? Promise.reject(new Error(cut[0])) : imageSize(r.imagePath),
            cut[1] ? Promise.reject(new Error(cut[1])) : imageSize(r.maskPath),
          ],
    );
    for (const s of [a, b])
      if (s.status === 'rejected') problems.push(s.reason instanceof Error ? s.reason.message : String(s.reason));
    if (a.status !== 'fulfilled' || b.status !== 'fulfilled') return;
    const [ia, ib] = [a.value, b.value];
    if (ia.width !== ib.width || ia.height !== ib.height)
      problems.push(
        `${r.imagePath} is ${ia.width}x${ia.height} but its mask ${r.maskPath} is ${ib.width}x${ib.height}`,
      );
    else if (mode === 'full') {
      masksRead++;
      if (!(ib as MaskImage).data.includes(1)) emptyMasks++;
    }
  };
  for (let i = 0; i < records.length; i += 8) await Promise.all(records.slice(i, i + 8).map(one));
  if (mode === 'headers' && problems.length === 0) {
    // a sample of masks, decoded
    const n = Math.min(32, records.length);
    const sample = Array.from({ length: n }, (_, k) => records[Math.floor((k * records.length) / n)]);
    for (const m of await Promise.all(sample.map((r) => readMask(r.maskPath!)))) {
      masksRead++;
      if (!m.data.includes(1)) emptyMasks++;
    }
  }
  return { problems: problems.sort(), masksRead, emptyMasks };
}

/** Why a JPEG or PNG file looks cut short (no end marker near its end), or null. */
function truncation(path: string): string | null {
  const ext = extname(path).toLowerCase();
  if (!['.jpg', '.jpeg', '.png'].includes(ext)) return null;
  let tail: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size,
        n = Math.min(size, 1024);
      tail = Buffer.alloc(n);
      readSync(fd, tail, 0, n, size - n);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    return `${path}: cannot read (${e instanceof Error ? e.message : String(e)})`;
  }
  // JPEG: the EOI marker FF D9 (some writers pad after it); PNG: the IEND chunk.
  const ok = ext === '.png' ? tail.includes('IEND') : tail.includes(Buffer.from([0xff, 0xd9]));
  return ok
    ? null
    : `image: "${path}" is truncated (no ${ext === '.png' ? 'IEND chunk' : 'JPEG end marker'} at its end)`;
}
