// Image I/O for Node: decode JPEG/PNG/TIFF/WebP to 8-bit RGB (interleaved HWC, the engine's
// RgbImage), read binary masks, resize, and write PNG/JPEG.
// Decoding uses sharp (libvips) with failOn 'warning', so truncated or corrupt files throw
// (errors name the file). Pixels are taken as stored: no EXIF auto-rotation (like PIL's
// Image.open) and no alpha (dropped); grey and 16-bit images become 8-bit RGB (masks are read by
// value at their own bit depth, see readMask).
// Resize filter: sharp's 'linear' kernel, fit 'fill' (aspect ratio not kept). libvips' reduce
// widens the triangle filter by the scale factor when shrinking, i.e. it antialiases like PIL's
// BILINEAR, which torchvision's Resize uses on PIL images; for large reductions libvips may
// first box-shrink by an integer factor. Masks are resized by nearest neighbour (pixel centres).
// PNG writing uses fast-png (pure JavaScript, byte-for-byte reproducible).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import sharp from 'sharp';
import { encode as encodePng } from 'fast-png';
import type { MaskImage, RgbImage } from '../engine/data/index.ts';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.webp'] as const;

export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

function decodeError(path: string, e: unknown): Error {
  return new Error(`image: cannot decode "${path}": ${e instanceof Error ? e.message : String(e)}`);
}

/** Decodes an image file to 8-bit RGB. */
export async function decodeImage(path: string): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(path, { failOn: 'warning' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw decodeError(path, e);
  }
}

/** Decodes and resizes in one pass (the documented linear filter; no shrink-on-load). */
export async function decodeImageResized(path: string, width: number, height: number): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(path, { failOn: 'warning' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { kernel: 'linear', fit: 'fill', fastShrinkOnLoad: false })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw decodeError(path, e);
  }
}

/**
 * Decodes so the longer side is at most `maxSide` (aspect kept; never enlarged). JPEG shrink-on-load
 * is allowed here: this is for caching large frames once, where a 1920x1080 decode dominates.
 */
export async function decodeImageFit(path: string, maxSide: number): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(path, { failOn: 'warning' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(maxSide, maxSide, { kernel: 'linear', fit: 'inside', withoutEnlargement: true })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw decodeError(path, e);
  }
}

/** Width and height from the file header (no full decode). */
export async function imageSize(path: string): Promise<{ width: number; height: number }> {
  try {
    const m = await sharp(path).metadata();
    if (!m.width || !m.height) throw new Error('no size in header');
    return { width: m.width, height: m.height };
  } catch (e) {
    throw decodeError(path, e);
  }
}

/**
 * Reads a mask as {0, 1} by its stored values, whatever the bit depth: a pixel is foreground when
 * its largest channel is >= threshold (128: the Kvasir-SEG convention for its 8-bit JPEG masks;
 * for 16-bit files the same fraction of full scale, 128 * 257). A mask whose values are only 0
 * and 1 (saved as class indices), or only 0..255 in a 16-bit file, uses threshold 1 or 128 on
 * its values: converting a 16-bit 0/1 or 0/255 mask to 8 bits first would round it to all zeros.
 */
export async function readMask(path: string, threshold = 128): Promise<MaskImage> {
  let width: number, height: number, channels: number, px: Uint8Array | Uint16Array;
  try {
    const wide = (await sharp(path).metadata()).depth === 'ushort';
    const { data, info } = await sharp(path, { failOn: 'warning' })
      .removeAlpha()
      .toColourspace(wide ? 'rgb16' : 'srgb')
      .raw({ depth: wide ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    ({ width, height, channels } = info);
    px = wide
      ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
  } catch (e) {
    throw decodeError(path, e);
  }
  const n = width * height,
    v = new Uint16Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let c = 0; c < channels; c++) m = Math.max(m, px[channels * i + c]);
    v[i] = m;
    if (m > max) max = m;
  }
  const t = max <= 1 ? 1 : max <= 255 ? threshold : threshold * 257;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = v[i] >= t ? 1 : 0;
  return { width, height, data: out };
}

/** Resizes 8-bit RGB with the documented linear filter. */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  checkRgb(img, 'resizeImage');
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: 'linear', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Nearest-neighbour mask resize: output pixel (x, y) takes input pixel floor((x + 0.5) W / w). */
export function resizeMask(mask: MaskImage, width: number, height: number): MaskImage {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(mask.height - 1, Math.floor(((y + 0.5) * mask.height) / height));
    for (let x = 0; x < width; x++)
      out[y * width + x] =
        mask.data[sy * mask.width + Math.min(mask.width - 1, Math.floor(((x + 0.5) * mask.width) / width))];
  }
  return { width, height, data: out };
}

function checkRgb(img: RgbImage, op: string): void {
  if (img.data.length !== img.width * img.height * 3)
    throw new Error(
      `${op}: ${img.width}x${img.height} RGB needs ${img.width * img.height * 3} bytes, got ${img.data.length}`,
    );
}

/**
 * The outline of a binary mask, `width` px thick: the mask minus its erosion by a (2·width+1)²
 * square (libvips' morphological erode, through sharp). Pixels outside the image count as
 * background, so a mask that touches the border is outlined along it.
 */
export async function maskContour(mask: MaskImage, width = 1): Promise<Uint8Array> {
  const { width: w, height: h } = mask,
    t = Math.max(1, Math.round(width));
  const raw = (data: Uint8Array, rw: number, rh: number) =>
    sharp(data, { raw: { width: rw, height: rh, channels: 1 } });
  // sharp's erode shrinks dark objects (libvips morph with an all-zero mask, then invert): the
  // mask is drawn black on white, and the padding is white (background).
  const bytes = Uint8Array.from(mask.data, (v) => (v ? 0 : 255));
  // One operation per pipeline (sharp orders operations itself, not by call order); one channel out.
  const padded = await raw(bytes, w, h)
    .extend({ top: t, bottom: t, left: t, right: t, background: { r: 255, g: 255, b: 255 } })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  const eroded = await raw(new Uint8Array(padded), w + 2 * t, h + 2 * t)
    .erode(t)
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  const inside = await raw(new Uint8Array(eroded), w + 2 * t, h + 2 * t)
    .extract({ left: t, top: t, width: w, height: h })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  return Uint8Array.from(mask.data, (v, p) => (v && inside[p] >= 128 ? 1 : 0));
}

/** PNG bytes of an RGB image, or of a mask (written as 0/255 grey). */
export function pngBytes(img: RgbImage | MaskImage, kind: 'rgb' | 'mask' = 'rgb'): Uint8Array {
  if (kind === 'rgb') {
    checkRgb(img, 'pngBytes');
    return encodePng({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
  }
  if (img.data.length !== img.width * img.height)
    throw new Error(
      `pngBytes: ${img.width}x${img.height} mask needs ${img.width * img.height} bytes, got ${img.data.length}`,
    );
  return encodePng({
    width: img.width,
    height: img.height,
    data: img.data.map((v) => (v ? 255 : 0)),
    channels: 1,
    depth: 8,
  });
}

export function writePng(path: string, img: RgbImage): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, pngBytes(img, 'rgb'));
}

export function writeMaskPng(path: string, mask: MaskImage): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, pngBytes(mask, 'mask'));
}

/** JPEG bytes (4:4:4 chroma so small coloured details survive). */
export async function jpegBytes(img: RgbImage, quality = 95): Promise<Uint8Array> {
  checkRgb(img, 'jpegBytes');
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:4:4' })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

export async function writeJpeg(path: string, img: RgbImage, quality = 95): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, await jpegBytes(img, quality));
}
