// Charts for the training and evaluation reports (plot/: drawn into an RGBA raster), and their
// PNG files (8-bit RGBA, encoded by fast-png).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { encode } from 'fast-png';
import type { Canvas } from './plot/raster.ts';

export * from './plot/index.ts';

export function encodePng(canvas: Canvas): Uint8Array {
  return encode({
    width: canvas.width,
    height: canvas.height,
    data: new Uint8Array(canvas.data.buffer),
    channels: 4,
    depth: 8,
  });
}

/** Writes a canvas (or a chart holding one) to `path`, creating its folder; returns the path. */
export function writePng(path: string, image: Canvas | { canvas: Canvas }): string {
  const canvas = 'canvas' in image ? image.canvas : image;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(canvas));
  return path;
}
