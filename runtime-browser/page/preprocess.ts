// Image preprocessing shared by the in-browser page and Node (tests, scripts): RGBA pixels as a
// canvas's getImageData gives them -> resized 8-bit RGB -> a [1, 3, H, W] float input.
// Pure arrays only (no DOM, no Node), so both sides run exactly this code.
//
// Resize: separable triangle (bilinear) filter whose support widens with the reduction factor,
// i.e. an antialiasing bilinear like PIL's BILINEAR / libvips' linear reduce, which the Node
// recipes use through sharp (runtime-node/image.ts); when shrinking, the two agree to about 0.1
// levels on average. When enlarging, this filter keeps pixel centres aligned, while libvips'
// upsampling samples half an output pixel early. Results are rounded to 8 bits, as a decoded
// and resized image is there, so the float input is built the same way: x / 255, then
// - EVA-02: ImageNet mean/std (recipes/endoextend/kit.ts `IMAGENET`, `normalize`);
// - Polyp-PVT: raw [0, 1] RGB (spec §2.5: the reference trains and tests without normalisation).
// Alpha is ignored (pixels are taken as stored, like sharp's removeAlpha()).

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export type Normalization = 'imagenet' | 'none';

export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** Filter weights of one output axis: for output i, taps [start, start + n) with weights. */
function axisWeights(
  inSize: number,
  outSize: number,
): { start: Int32Array; n: Int32Array; w: Float64Array; taps: number } {
  const scale = inSize / outSize;
  const support = Math.max(1, scale); // triangle half-width in input pixels
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize),
    n = new Int32Array(outSize),
    w = new Float64Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support)),
      hi = Math.min(inSize, Math.ceil(centre + support));
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const v = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
      w[i * taps + j - lo] = v;
      total += v;
    }
    for (let j = lo; j < hi; j++) w[i * taps + j - lo] /= total;
    start[i] = lo;
    n[i] = hi - lo;
  }
  return { start, n, w, taps };
}

/** Resizes RGBA (4 channels, alpha dropped) to 8-bit RGB [h, w, 3] (aspect ratio not kept). */
export function resizeToRgb(img: RgbaImage, width: number, height: number): Uint8Array {
  const { width: sw, height: sh, data } = img;
  if (data.length !== sw * sh * 4)
    throw new Error(`resizeToRgb: ${sw}x${sh} RGBA needs ${sw * sh * 4} bytes, got ${data.length}`);
  if (!(width >= 1 && height >= 1)) throw new Error(`resizeToRgb: target ${width}x${height} must be at least 1x1`);
  const ax = axisWeights(sw, width),
    ay = axisWeights(sh, height);
  // Horizontal pass: [sh, sw] -> [sh, width] (floats), then vertical: -> [height, width].
  const tmp = new Float64Array(sh * width * 3);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let k = 0; k < ax.n[x]; k++) {
        const wt = ax.w[x * ax.taps + k],
          p = (y * sw + ax.start[x] + k) * 4;
        r += wt * data[p];
        g += wt * data[p + 1];
        b += wt * data[p + 2];
      }
      const q = (y * width + x) * 3;
      tmp[q] = r;
      tmp[q + 1] = g;
      tmp[q + 2] = b;
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let k = 0; k < ay.n[y]; k++) {
        const wt = ay.w[y * ay.taps + k],
          q = ((ay.start[y] + k) * width + x) * 3;
        r += wt * tmp[q];
        g += wt * tmp[q + 1];
        b += wt * tmp[q + 2];
      }
      const o = (y * width + x) * 3;
      out[o] = clampByte(r);
      out[o + 1] = clampByte(g);
      out[o + 2] = clampByte(b);
    }
  }
  return out;
}

const clampByte = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** 8-bit RGB [h, w, 3] -> planar float [3, h, w]: x / 255, then the model's normalisation. */
export function rgbToChw(rgb: Uint8Array, width: number, height: number, norm: Normalization): Float32Array {
  const hw = width * height,
    out = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.fround(rgb[3 * p + c] / 255); // as imagesToChw stores it
      out[c * hw + p] = norm === 'imagenet' ? (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c] : v;
    }
  }
  return out;
}

/** The whole recipe: RGBA pixels -> model input [3, size, size] (and the resized RGB). */
export function preprocess(
  img: RgbaImage,
  width: number,
  height: number,
  norm: Normalization,
): { input: Float32Array; rgb: Uint8Array } {
  const rgb = resizeToRgb(img, width, height);
  return { input: rgbToChw(rgb, width, height, norm), rgb };
}

/** RGB [h, w, 3] -> RGBA (opaque), e.g. to run `preprocess` on an image decoded by sharp. */
export function rgbToRgba(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    out[4 * p] = rgb[3 * p];
    out[4 * p + 1] = rgb[3 * p + 1];
    out[4 * p + 2] = rgb[3 * p + 2];
    out[4 * p + 3] = 255;
  }
  return out;
}

/** FNV-1a hash of the RGB bytes of an RGBA image (alpha skipped): shows two decoders agree. */
export function rgbChecksum(img: RgbaImage): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < img.data.length; i++) {
    if ((i & 3) === 3) continue;
    h = Math.imul(h ^ img.data[i], 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
