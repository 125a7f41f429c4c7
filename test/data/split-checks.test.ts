// Masks read by value at any bit depth (16-bit 0/1 and 0/255 PNGs used to round to all zeros),
// and the start-of-run split check that names every bad file at once.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, truncateSync, statSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { readMask } from '../../runtime-node/image.ts';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import { checkSegSplit } from '../../runtime-node/seg-samples.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';

const tmp = mkdtempSync(join(tmpdir(), 'split-checks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const LAYOUT = [0, 1, 1, 0, 0, 0, 1, 0]; // 4x2

describe('readMask by value', () => {
  const cases: [string, number, number, number][] = [
    ['16-bit grey 0/1', 16, 1, 1],
    ['16-bit grey 0/255', 16, 1, 255],
    ['16-bit grey 0/65535', 16, 1, 65535],
    ['16-bit RGB 0/255', 16, 3, 255],
    ['8-bit grey 0/1', 8, 1, 1],
    ['8-bit grey 0/255', 8, 1, 255],
  ];
  for (const [name, depth, channels, on] of cases) {
    it(name, async () => {
      const px = LAYOUT.flatMap((v) => Array(channels).fill(v * on));
      const f = join(tmp, `${name.replace(/[^a-z0-9]/gi, '_')}.png`);
      writeFileSync(
        f,
        encode({
          width: 4,
          height: 2,
          channels,
          depth: depth as 8 | 16,
          data: depth === 16 ? Uint16Array.from(px) : Uint8Array.from(px),
        }),
      );
      const m = await readMask(f);
      expect([m.width, m.height]).toEqual([4, 2]);
      expect(Array.from(m.data)).toEqual(LAYOUT);
    });
  }
  it('16-bit soft masks binarise at half scale', async () => {
    const f = join(tmp, 'soft16.png');
    writeFileSync(
      f,
      encode({ width: 4, height: 1, channels: 1, depth: 16, data: Uint16Array.from([0, 30000, 33000, 65535]) }),
    );
    expect(Array.from((await readMask(f)).data)).toEqual([0, 0, 1, 1]);
  });
});

describe('checkSegSplit', () => {
  it('passes a good split, and names every bad file at once (truncated image, bad mask, size mismatch)', async () => {
    const root = join(tmp, 'set');
    await writePolypSet(root, 12, { seed: 5, width: 48, height: 40 });
    const recs = readKvasirSeg(root, { split: 'train', log: null }).records;
    expect(await checkSegSplit(recs, 'full')).toEqual({
      problems: [],
      masksRead: recs.length,
      emptyMasks: expect.any(Number),
    });
    expect(await checkSegSplit(recs, 'headers')).toEqual({
      problems: [],
      masksRead: recs.length,
      emptyMasks: expect.any(Number),
    });
    // Three different faults in three different records.
    const [a, b, c] = recs;
    truncateSync(a.imagePath, Math.floor(statSync(a.imagePath).size / 2));
    writeFileSync(b.maskPath!, 'not an image');
    writeFileSync(c.maskPath!, encode({ width: 8, height: 8, channels: 1, depth: 8, data: new Uint8Array(64) }));
    const full = await checkSegSplit(recs, 'full');
    expect(full.problems).toHaveLength(3);
    expect(full.problems.join('\n')).toContain(a.imagePath);
    expect(full.problems.join('\n')).toContain(b.maskPath!);
    expect(full.problems.join('\n')).toContain(`${c.imagePath} is 48x40 but its mask ${c.maskPath} is 8x8`);
    // Headers only: the truncated JPEG's header is intact; its missing end marker gives it away.
    const headers = await checkSegSplit(recs, 'headers');
    expect(headers.problems).toHaveLength(3);
    expect(headers.problems.join('\n')).toContain(
      `image: "${a.imagePath}" is truncated (no JPEG end marker at its end)`,
    );
    expect(headers.problems.join('\n')).toContain(b.maskPath!);
    expect(headers.problems.join('\n')).toContain(c.maskPath!);
  });

  it('counts empty masks (a whole split of them is what a 16-bit mask bug looked like)', async () => {
    const root = join(tmp, 'empty');
    await writePolypSet(root, 6, { seed: 1, width: 32, height: 32 });
    const recs = readKvasirSeg(root, { log: null }).records;
    const blank = join(tmp, 'blank.png');
    writeFileSync(blank, encode({ width: 32, height: 32, channels: 1, depth: 8, data: new Uint8Array(1024) }));
    for (const r of recs) copyFileSync(blank, r.maskPath!);
    expect(await checkSegSplit(recs, 'full')).toEqual({
      problems: [],
      masksRead: recs.length,
      emptyMasks: recs.length,
    });
    expect(await checkSegSplit(recs, 'headers')).toEqual({
      problems: [],
      masksRead: recs.length,
      emptyMasks: recs.length,
    });
  });
});
