// SVG building blocks for the charts: escaped text, lines, rectangles and polylines as strings,
// and a text-width estimate for laying out margins and legends before anything is rendered.
// sharp (librsvg) renders the document to PNG in ../plots.ts.
//
// Coordinates are pixels: pixel (x, y) covers [x, x + 1) x [y, y + 1), so a 1-pixel stroke on a
// pixel row is drawn at y + 0.5 (the helpers below take care of that for hairlines).
//
// Widths: the advance widths of DejaVu Sans (the font requested first; per 1000 units of the em,
// printable ASCII from ' ' to '~', read from DejaVuSans.ttf). Other characters count as 0.65 em.
// A fallback font differs by a few percent, which the margins absorb.

export type RGB = readonly [number, number, number];

export const FONT_FAMILY = 'DejaVu Sans, Verdana, sans-serif';

const ADVANCE = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636,
  636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863,
  748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635,
  615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636,
  337, 636, 838,
];

/** Width in pixels of `s` set in the chart font at `size` pixels. */
export function textWidth(s: string, size: number): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)! - 32;
    w += c >= 0 && c < ADVANCE.length ? ADVANCE[c] : 650;
  }
  return (w / 1000) * size;
}

const n = (v: number) => String(Math.round(v * 100) / 100);
export const color = (c: RGB) => `rgb(${c[0]},${c[1]},${c[2]})`;
export const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface TextOptions {
  size: number;
  align?: 'left' | 'center' | 'right';
  /** Where y sits: the top of the capitals, their middle, or the baseline. Default 'top'. */
  baseline?: 'top' | 'middle' | 'alphabetic';
  /** Rotated 90 degrees counter-clockwise (reads bottom to top), about (x, y). */
  vertical?: boolean;
  fill?: RGB;
}

// DejaVu Sans' capitals are 0.73 em tall; the offsets place them without relying on
// dominant-baseline, which renderers support unevenly.
const CAP = 0.73;

export function text(s: string, x: number, y: number, o: TextOptions): string {
  const anchor = o.align === 'center' ? 'middle' : o.align === 'right' ? 'end' : 'start';
  const shift = o.baseline === 'middle' ? (CAP / 2) * o.size : o.baseline === 'alphabetic' ? 0 : CAP * o.size;
  // Vertical text: the baseline offset moves right (toward +x) once rotated.
  const [tx, ty] = o.vertical ? [x + shift, y] : [x, y + shift];
  const rot = o.vertical ? ` transform="rotate(-90 ${n(tx)} ${n(ty)})"` : '';
  return (
    `<text x="${n(tx)}" y="${n(ty)}" font-size="${n(o.size)}" text-anchor="${anchor}"` +
    ` fill="${color(o.fill ?? [34, 34, 34])}"${rot}>${escapeXml(s)}</text>`
  );
}

export function rect(x: number, y: number, w: number, h: number, fill: RGB, opacity = 1): string {
  const op = opacity < 1 ? ` fill-opacity="${opacity}"` : '';
  return `<rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" fill="${color(fill)}"${op}/>`;
}

/** A 1-pixel outline covering the pixels of the rectangle's edge (x .. x + w - 1). */
export function frameRect(x: number, y: number, w: number, h: number, stroke: RGB): string {
  return (
    `<rect x="${n(x + 0.5)}" y="${n(y + 0.5)}" width="${n(w - 1)}" height="${n(h - 1)}" fill="none"` +
    ` stroke="${color(stroke)}" stroke-width="1" shape-rendering="crispEdges"/>`
  );
}

export interface StrokeOptions {
  width?: number;
  dash?: readonly number[];
  /** Hairlines (grid, ticks) snap to pixels instead of being anti-aliased. */
  crisp?: boolean;
}

/** A polyline through x0, y0, x1, y1, ... */
export function polyline(points: readonly number[], stroke: RGB, o: StrokeOptions = {}): string {
  if (points.length < 4) return '';
  const pts: string[] = [];
  for (let i = 0; i + 1 < points.length; i += 2) pts.push(`${n(points[i])},${n(points[i + 1])}`);
  const dash = o.dash ? ` stroke-dasharray="${o.dash.map(n).join(' ')}"` : '';
  const crisp = o.crisp ? ' shape-rendering="crispEdges"' : '';
  return (
    `<polyline points="${pts.join(' ')}" fill="none" stroke="${color(stroke)}" stroke-width="${n(o.width ?? 1)}"` +
    ` stroke-linejoin="round" stroke-linecap="butt"${dash}${crisp}/>`
  );
}

export function line(x0: number, y0: number, x1: number, y1: number, stroke: RGB, o: StrokeOptions = {}): string {
  return polyline([x0, y0, x1, y1], stroke, o);
}

/** The document: a white page of `width` x `height` pixels holding `body`. */
export function svgDocument(width: number, height: number, body: string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
    ` font-family="${FONT_FAMILY}">\n${rect(0, 0, width, height, [255, 255, 255])}\n${body.join('\n')}\n</svg>\n`
  );
}
