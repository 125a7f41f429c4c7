// The columns of boxes.csv, the box table stage 3 writes (cam-boxes.ts) and stage 4, stage 6's
// --sam-in-rounds and run-all's box-as-mask baseline read or write again: one box per image in
// original pixels, whether the box rule accepted it, and why not.
export const BOXES_COLUMNS = ['image_path', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason'] as const;
