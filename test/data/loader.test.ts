import { describe, it, expect } from 'vitest';
import { Loader, imagesToChw, masksToChw } from '../../engine/data/loader.ts';
import { DataOrder, RandomSampler } from '../../engine/data/sampler.ts';

const make = (prefetch: number, loads: number[]) =>
  new Loader({
    order: new DataOrder(new RandomSampler(20), { batchSize: 4, seed: 5 }),
    load: async (i: number) => {
      loads.push(i);
      return i;
    },
    collate: (items: number[]) => items,
    prefetch,
  });

describe('Loader', () => {
  it('loads the next batches ahead of the one consumed', async () => {
    const loads: number[] = [];
    const l = make(2, loads);
    await l.next();
    expect(loads.length).toBe(12); // the batch returned and two more behind it
  });

  it('resumes after the last consumed batch, whatever was prefetched', async () => {
    const ref = make(0, []);
    const all: number[][] = [];
    for (let k = 0; k < 8; k++) all.push((await ref.next()).data);
    const a = make(3, []);
    for (let k = 0; k < 3; k++) expect((await a.next()).data).toEqual(all[k]);
    const saved = a.stateDict();
    const b = make(3, []);
    b.loadStateDict(saved);
    for (let k = 3; k < 8; k++) expect((await b.next()).data).toEqual(all[k]); // epoch 2 included (5 batches/epoch)
    await expect(async () => b.loadStateDict(saved)).rejects.toThrow(/before the first next/);
  });

  it('surfaces a failed load when that batch is consumed', async () => {
    const l = new Loader({
      order: new DataOrder(new RandomSampler(8), { batchSize: 4, seed: 0 }),
      prefetch: 1,
      load: async (i: number) => {
        if (i === 3) throw new Error('cannot decode "x.jpg"');
        return i;
      },
      collate: (items: number[]) => items,
    });
    await expect(
      (async () => {
        for (let k = 0; k < 2; k++) await l.next();
      })(),
    ).rejects.toThrow(/x\.jpg/);
  });
});

describe('collation', () => {
  it('lays RGB images out as [B, 3, H, W] in [0, 1] and masks as [B, 1, H, W]', () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([255, 0, 51, 0, 255, 102]) };
    const { data, shape } = imagesToChw([img, img]);
    expect(shape).toEqual([2, 3, 1, 2]);
    expect(Array.from(data.slice(0, 6)).map((v) => +v.toFixed(2))).toEqual([1, 0, 0, 1, 0.2, 0.4]);
    expect(Array.from(masksToChw([{ width: 2, height: 1, data: Uint8Array.from([0, 3]) }]).data)).toEqual([0, 1]);
    expect(() => imagesToChw([img, { width: 1, height: 1, data: new Uint8Array(3) }])).toThrow(
      /image 1 is 1x1, expected 2x1/,
    );
  });
});
