// Reading what the user gives the page: a checkpoint's byte stream with a progress bar, and an
// image file decoded to its stored RGBA pixels (no colour-space conversion, alpha not premultiplied,
// so the numbers are the file's, as Node's decoder gives them).
import { $, fmtBytes } from './render.ts';
import type { RgbaImage } from './preprocess.ts';

/** Reads a byte stream to the end, reporting progress (total 0: unknown length). */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  total: number,
  onProgress: (got: number) => void,
): Promise<Uint8Array> {
  const reader = stream.getReader(),
    chunks: Uint8Array[] = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onProgress(got);
  }
  if (total && got !== total) throw new Error(`the download stopped at ${got} of ${total} bytes`);
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function progress(got: number, total: number, what: string): void {
  const bar = $<HTMLProgressElement>('ckpt-progress');
  if (total) bar.value = got / total;
  else bar.removeAttribute('value');
  $('ckpt-progress-text').textContent = `${what}: ${fmtBytes(got)}${total ? ` of ${fmtBytes(total)}` : ''}`;
}

export async function decode(blob: Blob): Promise<{ bitmap: ImageBitmap; pixels: RgbaImage }> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  const d = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { bitmap, pixels: { width: d.width, height: d.height, data: d.data } };
}
