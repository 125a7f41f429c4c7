// Flat parameter storage: tensors laid out in 256-byte-aligned windows of a few flat f32 buffers
// (Tensor.window), so a fused optimizer step, a gradient norm or a weight average touches every
// parameter with one dispatch per flat buffer. Module.flattenParameters() re-homes a model's
// parameters here; the optimizers, gradient clipping and ModelEma pack what is not yet flat.
// References: Apex/DeepSpeed flat parameter buffers (one fused optimizer step).
import { Tensor, BYTES, device, fmt } from './tensor.ts';
import { zeros } from './ops/creation.ts';

/** Elements per 256-byte alignment unit of f32 windows: every window starts on such a chunk. */
export const FLAT_CHUNK = 64;

export interface FlatSlot {
  slab: number;
  offset: number;
  size: number;
}
export interface FlatPlan {
  slabSizes: number[];
  slots: FlatSlot[];
}

/** Largest f32 slab (elements, a multiple of FLAT_CHUNK) whose pooled buffer fits one binding. */
export function maxSlabElements(): number {
  const lim = device().limits;
  const bytes = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
  // The pool rounds a request up by at most 1/8 (sizeClass), so stay 1/8 below the limit.
  return Math.floor(bytes / 1.125 / 4 / FLAT_CHUNK) * FLAT_CHUNK;
}

/** Lays tensors of the given sizes out in slabs, each starting on a 64-element (256-byte) boundary. */
export function planFlat(sizes: readonly number[], maxElements = maxSlabElements()): FlatPlan {
  const slabSizes: number[] = [];
  const slots: FlatSlot[] = [];
  let used = 0;
  for (const size of sizes) {
    const span = Math.ceil(size / FLAT_CHUNK) * FLAT_CHUNK;
    if (span > maxElements)
      throw new Error(
        `planFlat: a tensor of ${size} elements exceeds the largest bindable buffer (${maxElements} f32)`,
      );
    if (slabSizes.length === 0 || used + span > maxElements) {
      slabSizes.push(0);
      used = 0;
    }
    slots.push({ slab: slabSizes.length - 1, offset: used, size });
    used += span;
    slabSizes[slabSizes.length - 1] = Math.max(used, FLAT_CHUNK);
  }
  return { slabSizes, slots };
}

const HOMES = new WeakMap<Tensor, { slab: Tensor; offset: number }>();

/** The flat slab (and element offset) a window made by packFlat lives in. */
export function flatHomeOf(t: Tensor): { slab: Tensor; offset: number } | undefined {
  const h = HOMES.get(t);
  return h && !h.slab.disposed && !t.disposed ? h : undefined;
}

/**
 * Zero-filled, kept f32 slabs holding the given f32 tensors, and a window per tensor with its
 * shape (the values are copied in when `copyValues`). Windows keep their slab's storage alive.
 */
export function packFlat(
  tensors: readonly Tensor[],
  op: string,
  copyValues: boolean,
  maxElements = maxSlabElements(),
): { slabs: Tensor[]; windows: Tensor[]; plan: FlatPlan } {
  for (const t of tensors)
    if (t.dtype !== 'f32')
      throw new Error(`${op}: only f32 tensors can live in flat buffers, got ${fmt(t.shape)} ${t.dtype}`);
  const plan = planFlat(
    tensors.map((t) => t.size),
    maxElements,
  );
  const slabs = plan.slabSizes.map((n) => zeros([n]).keep());
  const windows = tensors.map((t, i) => {
    const s = plan.slots[i];
    const w = Tensor.window(slabs[s.slab], s.offset * 4, t.shape, 'f32', op);
    HOMES.set(w, { slab: slabs[s.slab], offset: s.offset });
    if (copyValues) copy_(w, t, op);
    return w;
  });
  return { slabs, windows, plan };
}

/** dst <- src, in place (an encoder copy, not a dispatch). Same dtype and element count. */
export function copy_(dst: Tensor, src: Tensor, op = 'copy_'): Tensor {
  if (src.dtype !== dst.dtype || src.size !== dst.size) {
    throw new Error(`${op}: cannot copy ${fmt(src.shape)} ${src.dtype} into ${fmt(dst.shape)} ${dst.dtype}`);
  }
  const sb = src.buffer(op),
    db = dst.buffer(op);
  if (src.size === 0) return dst;
  const bytes = Math.ceil((src.size * BYTES[src.dtype]) / 4) * 4;
  if (sb !== db) {
    device().copy(sb, src.byteOffset, db, dst.byteOffset, bytes);
  } else if (src.byteOffset !== dst.byteOffset) {
    // WebGPU forbids copying a buffer onto itself: go through a scratch buffer.
    const tmp = Tensor.empty(src.shape, src.dtype, op);
    device().copy(sb, src.byteOffset, tmp.buffer(op), 0, bytes);
    device().copy(tmp.buffer(op), 0, db, dst.byteOffset, bytes);
    tmp.dispose();
  }
  return dst;
}
