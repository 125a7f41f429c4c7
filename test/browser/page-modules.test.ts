// The page's pure modules in Node: preprocessing (against the Node recipes' own resize and
// normalisation), overlays, and checkpoint loading with its readable errors.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { weightsBytes, imagesToChw } from '../../engine/index.ts';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../../engine/io/safetensors.ts';
import { CE24_CLASSES, renderCapsule } from '../../runtime-node/synthetic/index.ts';
import { Eva02 } from '../../models/eva02.ts';
import { IMAGENET, normalize } from '../../recipes/endoextend/kit.ts';
import { resizeImage } from '../../runtime-node/image.ts';
import {
  preprocess,
  resizeToRgb,
  rgbToChw,
  rgbToRgba,
  rgbChecksum,
  IMAGENET_MEAN,
  IMAGENET_STD,
} from '../../runtime-browser/page/preprocess.ts';
import { upsampleBilinear, maskLayer, heatLayer, topK, column } from '../../runtime-browser/page/overlay.ts';
import { loadCheckpoint, classify, segment, detectKind, readHeader } from '../../runtime-browser/page/infer.ts';
import { writeDemoCheckpoints, demoEvaConfig, sampleImages } from '../../runtime-browser/make-demo-assets.ts';
import { expectClose } from '../helpers.ts';

let dir: string;
let ckpt: { eva02: string; polypPvt: string };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'page-modules-'));
  ckpt = await writeDemoCheckpoints(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('preprocessing shared by the page and Node', () => {
  const frame = renderCapsule({ seed: 3, width: 200, height: 176, label: 1, tone: 0.5 });
  const rgba = { width: frame.width, height: frame.height, data: rgbToRgba(frame.data, frame.width, frame.height) };

  it('normalises exactly as the EVA-02 recipes (kit.ts normalize) and leaves Polyp-PVT inputs in [0, 1]', () => {
    expect([...IMAGENET_MEAN]).toEqual(IMAGENET.mean);
    expect([...IMAGENET_STD]).toEqual(IMAGENET.std);
    const rgb = resizeToRgb(rgba, 64, 64);
    const img = { width: 64, height: 64, data: rgb };
    const chw = imagesToChw([img]).data;
    expect([...rgbToChw(rgb, 64, 64, 'imagenet')]).toEqual([...normalize(chw, 64)]);
    expect([...rgbToChw(rgb, 64, 64, 'none')]).toEqual([...chw]);
  });

  it("resize: shrinks as the recipes' sharp filter, keeps centres when enlarging, identity at same size", async () => {
    for (const [w, h] of [
      [64, 64],
      [96, 80],
      [150, 150],
    ]) {
      const ours = resizeToRgb(rgba, w, h);
      const theirs = (await resizeImage(frame, w, h)).data;
      let sum = 0,
        worst = 0;
      for (let i = 0; i < ours.length; i++) {
        const d = Math.abs(ours[i] - theirs[i]);
        sum += d;
        worst = Math.max(worst, d);
      }
      expect(sum / ours.length, `mean |diff| at ${w}x${h}`).toBeLessThan(0.25);
      expect(worst, `max |diff| at ${w}x${h}`).toBeLessThanOrEqual(12);
    }
    const row = {
      width: 4,
      height: 1,
      data: rgbToRgba(new Uint8Array([0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0]), 4, 1),
    };
    expect([...resizeToRgb(row, 8, 1)].filter((_, i) => i % 3 === 0)).toEqual([0, 64, 191, 191, 64, 0, 0, 0]);
    expect([...resizeToRgb(rgba, 200, 176)]).toEqual([...frame.data]);
    const flat = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 4).fill(93) };
    expect(new Set(resizeToRgb(flat, 3, 11))).toEqual(new Set([93]));
  });

  it('checksums RGB only and rejects bad sizes', () => {
    const other = { ...rgba, data: rgba.data.slice() };
    other.data[3] = 0; // alpha does not count
    expect(rgbChecksum(other)).toBe(rgbChecksum(rgba));
    other.data[0] ^= 1;
    expect(rgbChecksum(other)).not.toBe(rgbChecksum(rgba));
    expect(() => resizeToRgb({ width: 4, height: 4, data: new Uint8Array(10) }, 2, 2)).toThrow(
      /4x4 RGBA needs 64 bytes, got 10/,
    );
  });
});

describe('overlays', () => {
  it('upsamples bilinearly with align_corners=False and draws mask, contour and heat layers', () => {
    expectClose(upsampleBilinear([0, 1], 1, 2, 1, 4), [0, 0.25, 0.75, 1], 'upsample');
    const prob = new Float32Array(16 * 16);
    for (let y = 4; y < 12; y++) for (let x = 4; x < 12; x++) prob[y * 16 + x] = 0.9;
    const { rgba, area } = maskLayer(prob, 16, 16, 64, 64);
    expect(area).toBeGreaterThan(0.2);
    expect(area).toBeLessThan(0.3);
    expect(rgba[3]).toBe(0); // corner: background
    expect([...rgba.subarray(4 * (32 * 64 + 32), 4 * (32 * 64 + 32) + 4)]).toEqual([0, 214, 170, 100]); // inside: tint
    const edge = rgba.subarray(4 * (32 * 64 + 17), 4 * (32 * 64 + 17) + 4); // 1 px inside the left edge (x = 16)
    expect([...edge]).toEqual([255, 236, 61, 255]);
    const heat = heatLayer([0, 1, 2, 3], 2, 2, 8, 8);
    expect(heat[3]).toBeLessThan(heat[4 * 63 + 3]); // more opaque where higher
    expect(topK([0.1, 0.5, 0.2, 0.5], 3)).toEqual([1, 3, 2]);
    expect([...column([1, 2, 3, 4, 5, 6], 3, 1)]).toEqual([2, 5]);
  });
});

describe('checkpoints for the page', () => {
  it('reads the demo checkpoints, detects their model, and runs them', async () => {
    const eva = readFileSync(ckpt.eva02),
      pvt = readFileSync(ckpt.polypPvt);
    expect(detectKind(readHeader(eva)!)).toBe('eva02');
    expect(detectKind(readHeader(pvt)!)).toBe('polyp-pvt');
    const m = loadCheckpoint(eva, { source: 'eva' });
    expect(m.kind).toBe('eva02');
    if (m.kind !== 'eva02') return;
    expect(m.classes).toEqual([...CE24_CLASSES]);
    const img = sampleImages()[1].image;
    const { input } = preprocess(
      { width: img.width, height: img.height, data: rgbToRgba(img.data, img.width, img.height) },
      64,
      64,
      'imagenet',
    );
    const r = await classify(m, input);
    expect(r.grid).toEqual([8, 8]);
    expect(r.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(Math.max(...r.probs) - Math.min(...r.probs)).toBeGreaterThan(0.01); // not a flat random head
    m.model.dispose();
    const s = loadCheckpoint(pvt, { source: 'pvt' });
    expect(s.inputSize).toEqual([64, 64]);
    if (s.kind !== 'polyp-pvt') throw new Error('expected Polyp-PVT');
    const seg = await segment(s, new Float32Array(3 * 64 * 64).fill(0.5));
    expect(seg.prob.length).toBe(64 * 64);
    expect(seg.prob.every((p) => p > 0 && p < 1)).toBe(true);
    s.model.dispose();
  });

  it('says why a checkpoint does not fit: the loadStateDict text, class names, unknown files', async () => {
    const eva = readFileSync(ckpt.eva02),
      pvt = readFileSync(ckpt.polypPvt);
    expect(() => loadCheckpoint(pvt, { kind: 'eva02', source: 'pvt.safetensors' })).toThrow(
      new RegExp(
        String.raw`^This checkpoint does not fit the EVA-02 classifier: \d+ weights missing, ` +
          String.raw`\d+ unexpected\. No EVA-02 config in the metadata: built the EVA-02 ` +
          String.raw`µ preset\. It looks like a Polyp-PVT segmenter checkpoint\.\npvt\.safetensors: ` +
          String.raw`loadStateDict: Error\(s\) in loading state_dict for Eva02:\n {2}Missing ` +
          String.raw`key\(s\) in state_dict: "cls_token"`,
      ),
    );
    expect(() => loadCheckpoint(eva, { kind: 'polyp-pvt', source: 'eva' })).toThrow(
      /loadStateDict: Error\(s\) in loading state_dict for PolypPVT/,
    );
    const seven = new Eva02(demoEvaConfig(7));
    const bytes = await weightsBytes(seven);
    const named = await weightsBytes(seven, {
      config: JSON.stringify(demoEvaConfig(7)),
      classes: JSON.stringify(['a', 'b']),
    });
    seven.dispose();
    expect(() => loadCheckpoint(bytes, { source: 'seven' })).toThrow(
      new RegExp(
        String.raw`^This checkpoint does not fit the EVA-02 classifier: 2 of another ` +
          String.raw`shape \(head\.weight: \[7, 64\] in the checkpoint, \[10, 64\] in the ` +
          String.raw`model; head\.bias: \[7\] in the checkpoint, \[10\] in the model\)\. ` +
          String.raw`No EVA-02 config in the metadata: built the EVA-02 µ preset\.\nseven: ` +
          String.raw`loadStateDict: .*\n {2}size mismatch for head\.weight: copying a param ` +
          String.raw`with shape \[7, 64\] from checkpoint, the shape in current model is ` +
          String.raw`\[10, 64\]`,
      ),
    );
    expect(() => loadCheckpoint(named, { source: 'named' })).toThrow(
      /named: the metadata lists 2 class names, the model config has numClasses 7/,
    );
    expect(() => loadCheckpoint(new Uint8Array([1, 2, 3]), { source: 'junk' })).toThrow(/^junk: .*too short/);
  });

  it('says a checkpoint with NaN/Infinity weights is broken instead of showing a 0% mask', () => {
    const p = parseSafetensors(new Uint8Array(readFileSync(ckpt.polypPvt)));
    const tensors: Record<string, SafetensorsInput> = { ...p.tensors };
    const key = Object.keys(tensors).find((k) => k.endsWith('weight') && tensors[k].dtype === 'F32')!;
    const poisoned = Float32Array.from(tensors[key].data as Float32Array);
    poisoned.fill(NaN, 0, 3);
    tensors[key] = { ...tensors[key], data: poisoned };
    const bytes = serializeSafetensors(tensors, p.metadata ?? {});
    expect(() => loadCheckpoint(bytes, { source: 'nan.safetensors' })).toThrow(
      new RegExp(
        `^nan\\.safetensors: the checkpoint is broken: NaN/Infinity in 1 tensor\\(s\\): ` +
          `${key.replace(/\./g, '\\.')} \\(3 of \\d+ values\\)`,
      ),
    );
  });
});
