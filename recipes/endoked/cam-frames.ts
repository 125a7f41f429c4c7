// EndoKED stage 3 (03-cam.ts): frames as the CAM classifier sees them. Each frame is decoded once,
// cropped to the endoscope's field of view with overlays filled (engine/data/fov.ts prepareFrame,
// found on a <= 320 px copy), resized to size² and cached; this module also holds the geometry
// between the original pixels and that size² grid (boxes out through the crop, true boxes and masks
// in), the ImageNet normalisation and the horizontal flips of training.
// Spec: recipes/endoked/README.md §3 "Frames"; ToCo (rulixiang/ToCo) for the normalisation.
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { scaleBox, type Box, type MaskImage, type RgbImage, prepareFrame } from '../../engine/data/index.ts';
import { decodeImageResized, imageSize, resizeImage } from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';

const MEAN = [0.485, 0.456, 0.406],
  STD = [0.229, 0.224, 0.225]; // ImageNet normalisation (ToCo)

/** A frame as cached: RGB bytes at size², the original size and the FOV crop (original pixels) they show. */
export interface Cached {
  data: Uint8Array;
  width: number;
  height: number;
  crop: Box;
}

/**
 * Decodes each frame once, optionally crops it to the field of view (prepareFrame), resizes it to
 * size² (linear) and caches it as `dir/<size>[-fov]/<sha1 of path>.rgb`: original width, height and
 * crop box x0, y0, x1, y1 (u32) + RGB bytes.
 */
export async function cacheFrames(
  paths: readonly string[],
  size: number,
  dir: string,
  fov: boolean,
): Promise<Map<string, Cached>> {
  const out = new Map<string, Cached>();
  const FOV_SIDE = 320;
  const folder = join(dir, `${size}${fov ? `-fov${FOV_SIDE}` : ''}`),
    HEAD = 24;
  mkdirSync(folder, { recursive: true });
  const todo = [...new Set(paths)];
  const bar = new Progress({ total: todo.length, label: 'frames', unit: 'img' });
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(
      todo.slice(i, i + 8).map(async (p) => {
        const file = join(folder, createHash('sha1').update(p).digest('hex') + '.rgb');
        let bytes = readIfExists(file);
        if (!bytes || bytes.length !== HEAD + size * size * 3) {
          let img: RgbImage, head: number[];
          if (fov) {
            // The FOV is found on a copy at most FOV_SIDE px on its long side (full-size frames are
            // up to 1920 px), its box scaled back to the original, outwards.
            const { width, height } = await imageSize(p);
            const k = Math.min(1, FOV_SIDE / Math.max(width, height)),
              w = Math.max(1, Math.round(width * k)),
              h = Math.max(1, Math.round(height * k));
            const prep = prepareFrame(await decodeImageResized(p, w, h));
            img = await resizeImage(prep.image, size, size);
            head = [
              width,
              height,
              ...scaleBox([prep.box.x0, prep.box.y0, prep.box.x1, prep.box.y1], w, h, width, height),
            ];
          } else {
            const { width, height } = await imageSize(p);
            img = await decodeImageResized(p, size, size);
            head = [width, height, 0, 0, width, height];
          }
          bytes = new Uint8Array(HEAD + img.data.length);
          head.forEach((v, i) => new DataView(bytes!.buffer).setUint32(4 * i, v, true));
          bytes.set(img.data, HEAD);
          writeAtomic(file, bytes);
        }
        const v = new DataView(bytes.buffer, bytes.byteOffset),
          u = (i: number) => v.getUint32(4 * i, true);
        out.set(p, { width: u(0), height: u(1), crop: [u(2), u(3), u(4), u(5)], data: bytes.subarray(HEAD) });
      }),
    );
    bar.tick(Math.min(8, todo.length - i));
  }
  return out;
}

/** HWC RGB bytes -> normalised CHW floats [B, 3, S, S]. */
export function toChw(images: readonly Uint8Array[], s: number): Float32Array {
  const out = new Float32Array(images.length * 3 * s * s);
  images.forEach((img, b) => {
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < s * s; p++) out[(b * 3 + c) * s * s + p] = (img[3 * p + c] / 255 - MEAN[c]) / STD[c];
  });
  return out;
}

/** Mirrors image k of a CHW batch left-right where flips[k] < 0.5 (the training augmentation, p = 0.5). */
export function flipBatch(x: Float32Array, b: number, s: number, flips: ArrayLike<number>): Float32Array {
  const out = new Float32Array(x);
  for (let k = 0; k < b; k++) {
    if (flips[k] >= 0.5) continue;
    for (let c = 0; c < 3; c++)
      for (let r = 0; r < s; r++) {
        const o = ((k * 3 + c) * s + r) * s;
        for (let col = 0; col < s; col++) out[o + col] = x[o + s - 1 - col];
      }
  }
  return out;
}

/** A box on the size² CAM -> original pixels (through the FOV crop). */
export function toOriginal(b: Box, s: number, crop: Box): Box {
  const [x0, y0, x1, y1] = scaleBox(b, s, s, crop[2] - crop[0], crop[3] - crop[1]);
  return [x0 + crop[0], y0 + crop[1], x1 + crop[0], y1 + crop[1]];
}

/** A box in original pixels -> the size² CAM grid (clamped), for drawing. */
export function toCam(b: Box, s: number, crop: Box): Box {
  const sx = s / (crop[2] - crop[0]),
    sy = s / (crop[3] - crop[1]);
  const c = (v: number) => Math.min(s, Math.max(0, v));
  return [
    c(Math.floor((b[0] - crop[0]) * sx)),
    c(Math.floor((b[1] - crop[1]) * sy)),
    c(Math.ceil((b[2] - crop[0]) * sx)),
    c(Math.ceil((b[3] - crop[1]) * sy)),
  ];
}

/** The part of a mask (original pixels) inside the FOV crop. */
export function cropMask(m: MaskImage, crop: Box): MaskImage {
  const [x0, y0, x1, y1] = crop,
    w = x1 - x0,
    h = y1 - y0,
    data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) data.set(m.data.subarray((y + y0) * m.width + x0, (y + y0) * m.width + x1), y * w);
  return { width: w, height: h, data };
}
