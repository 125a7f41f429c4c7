// The image types the dataset readers, the transforms and the recipes pass around: 8-bit, row
// major, as image decoders return them (runtime-node/image.ts decodes and encodes them).

/** 8-bit RGB, interleaved HWC (the layout image decoders return). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}
/** One byte per pixel, 0 (background) or 1 (foreground). */
export interface MaskImage {
  width: number;
  height: number;
  data: Uint8Array;
}
