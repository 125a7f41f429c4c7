// Charts for the training and evaluation reports (plot/: SVG documents), rendered to PNG by sharp
// (libvips' SVG loader, librsvg). writePng keeps the SVG next to the PNG for a vector copy.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import sharp from 'sharp';
import type { Figure } from './plot/charts.ts';

export * from './plot/index.ts';

/** A raster laid under the SVG (e.g. image tiles the SVG labels). */
export interface Underlay {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

// At 72 dpi (librsvg's default, stated so) one SVG user unit is one pixel.
const DENSITY = 72;

/** The SVG rendered to PNG bytes; drawn over `under` when given (same size as the SVG). */
export async function svgToPng(svg: string, under?: Underlay): Promise<Buffer> {
  if (!under) return sharp(Buffer.from(svg), { density: DENSITY }).png().toBuffer();
  return sharp(under.data, { raw: { width: under.width, height: under.height, channels: under.channels } })
    .composite([{ input: Buffer.from(svg), density: DENSITY }])
    .png()
    .toBuffer();
}

/** The SVG rendered to 8-bit RGBA pixels (tests probe these). */
export async function svgToRgba(svg: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(Buffer.from(svg), { density: DENSITY })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/**
 * Writes a chart to `path` (PNG) and, unless `svg` is false, its SVG to the same name with
 * `.svg`; creates the folder; returns the PNG's path.
 */
export async function writePng(path: string, figure: Figure, o: { svg?: boolean } = {}): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  const png = await svgToPng(figure.svg);
  writeFileSync(path, png);
  if (o.svg ?? true) writeFileSync(path.replace(/\.png$/i, '') + '.svg', figure.svg);
  return path;
}
