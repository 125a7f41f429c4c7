// Batches with background prefetch: while the GPU trains on batch k, the next `prefetch` batches
// are being loaded (in Node, sharp decodes on libuv's thread pool, so decoding overlaps GPU
// work). The order comes from a DataOrder (seeded, resumable); loading and collation are given
// by the runtime, so this file stays free of any I/O.
import type { Batch, DataOrder, DataOrderState } from './sampler.ts';
import type { MaskImage, RgbImage } from './images.ts';

export interface LoaderOptions<T, B> {
  order: DataOrder;
  /** Loads item i (decode, resize...). */
  load: (index: number) => Promise<T>;
  /** Turns loaded items into a batch (host arrays; tensors are made by the consumer). */
  collate: (items: T[], batch: Batch) => B;
  /** Batches loaded ahead of the one being consumed. */
  prefetch?: number;
}

export class Loader<T, B> {
  private readonly queue: { batch: Batch; data: Promise<B>; after: DataOrderState }[] = [];
  private readonly prefetch: number;
  private consumed: DataOrderState;

  constructor(private readonly o: LoaderOptions<T, B>) {
    this.prefetch = Math.max(0, o.prefetch ?? 2);
    this.consumed = o.order.stateDict();
  }

  private enqueue(): void {
    const batch = this.o.order.nextBatch();
    const data = Promise.all(Array.from(batch.indices, (i) => this.o.load(i))).then((items) =>
      this.o.collate(items, batch),
    );
    data.catch(() => undefined); // surfaced when consumed, not as an unhandled rejection
    this.queue.push({ batch, data, after: this.o.order.stateDict() });
  }

  /** The next batch; keeps `prefetch` more loading behind it. */
  async next(): Promise<{ batch: Batch; data: B }> {
    while (this.queue.length < this.prefetch + 1) this.enqueue();
    const head = this.queue.shift()!;
    while (this.queue.length < this.prefetch) this.enqueue();
    const data = await head.data;
    this.consumed = head.after;
    return { batch: head.batch, data };
  }

  /**
   * The data order just after the last batch returned by next(). Prefetching runs the order
   * ahead; a checkpoint saves this state so a resumed run continues with the next unseen batch.
   */
  stateDict(): DataOrderState {
    return this.consumed;
  }

  /** Continues from a saved stateDict(); only before the first next(). */
  loadStateDict(s: DataOrderState): void {
    if (this.queue.length > 0) throw new Error('Loader.loadStateDict: call it before the first next()');
    this.o.order.loadStateDict(s);
    this.consumed = s;
  }
}

/** RGB images (HWC, 8-bit) -> Float32 [B, 3, H, W] in [0, 1]; all images must share a size. */
export function imagesToChw(images: readonly RgbImage[]): {
  data: Float32Array;
  shape: [number, number, number, number];
} {
  const { width: w, height: h } = images[0];
  const out = new Float32Array(images.length * 3 * h * w);
  images.forEach((im, b) => {
    if (im.width !== w || im.height !== h)
      throw new Error(
        `imagesToChw: image ${b} is ${im.width}x${im.height}, expected ${w}x${h} like the first (resize first)`,
      );
    const base = b * 3 * h * w;
    for (let p = 0; p < h * w; p++) {
      out[base + p] = im.data[3 * p] / 255;
      out[base + h * w + p] = im.data[3 * p + 1] / 255;
      out[base + 2 * h * w + p] = im.data[3 * p + 2] / 255;
    }
  });
  return { data: out, shape: [images.length, 3, h, w] };
}

/** Binary masks -> Float32 [B, 1, H, W] in {0, 1}. */
export function masksToChw(masks: readonly MaskImage[]): {
  data: Float32Array;
  shape: [number, number, number, number];
} {
  const { width: w, height: h } = masks[0];
  const out = new Float32Array(masks.length * h * w);
  masks.forEach((m, b) => {
    if (m.width !== w || m.height !== h)
      throw new Error(`masksToChw: mask ${b} is ${m.width}x${m.height}, expected ${w}x${h}`);
    for (let p = 0; p < h * w; p++) out[b * h * w + p] = m.data[p] ? 1 : 0;
  });
  return { data: out, shape: [masks.length, 1, h, w] };
}
