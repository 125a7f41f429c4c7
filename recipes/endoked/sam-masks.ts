// EndoKED stage 4 (04-sam-pseudo-masks.ts, without --train): box prompts -> pixel pseudo-masks with
// the trained decoder, spec §2.3 "CAM -> box -> SAM" and §2.4. EndoKED prompts SAM with each CAM box
// (multimask_output=False, mask = logits > 0); here each image is embedded once (frozen backbone +
// the decoder's neck, recipes/endoked/sam-kit.ts) and each box decoded against it; an image's mask
// is the union of its boxes' masks. Produces the Kvasir-SEG layout: images/ (symlinks of the
// prompted images), masks/<id>.png (0/255), train.txt, and test.txt with the test images and their
// real masks linked from --test-from (default: the --boxes-from-masks folder), so 05-segmenter.ts
// trains on pseudo-masks and tests on real masks; metrics.json (mean Dice of the decoder's and the
// box's masks vs the true masks when known, per image; embedding and per-box decoder latency).
// Deviation: frames are resized to S x S (SAM keeps the aspect ratio and pads to 1024²), so
// post-processing is bilinear to S, no crop, bilinear to the original size, threshold 0.
import { existsSync, mkdirSync, readFileSync, symlinkSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { tidy, noGrad, tensor, gt, loadWeights } from '../../engine/index.ts';
import { samPromptDecoder, postprocessMasks } from '../../models/sam-decoder.ts';
import { FEATURE_CHANNELS, type PolypPVT } from '../../models/polyp-pvt.ts';
import { initNode } from '../../runtime-node/index.ts';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import { decodeImageResized, imageSize, readMask, writeMaskPng } from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { uniqueIds } from './pipeline.ts';
import { decoderConfig, backboneFeatureTensor, boxMask, dice } from './sam-kit.ts';
import { readBoxes, boxesFromMasks } from './sam-boxes.ts';
import type { SamFlags } from './04-sam-pseudo-masks.ts';

/**
 * Box prompts (boxes.csv or --boxes-from-masks) -> the union of the decoder's masks per image, in the
 * Kvasir-SEG layout in `out`, with metrics.json (Dice vs the true masks when known; latencies).
 */
export async function writePseudoMasks(f: SamFlags, backbone: PolypPVT, weightsPath: string, out: string) {
  for (const d of ['images', 'masks']) mkdirSync(join(out, d), { recursive: true });
  const config = decoderConfig(f.size);
  const model = samPromptDecoder(config, { neckInChans: FEATURE_CHANNELS });
  loadWeights(model, new Uint8Array(readFileSync(weightsPath)), { source: weightsPath });
  model.eval();
  const fromMasks = f.boxesFromMasks ? resolve(f.boxesFromMasks) : undefined;
  const targets = fromMasks
    ? await boxesFromMasks(fromMasks, out, f.jitter, f.seed, f.limit)
    : readBoxes(resolve(f.boxes!), f.images && resolve(f.images)).slice(0, f.limit);
  if (targets.length === 0) throw new Error('no accepted boxes to turn into masks');
  // stems, folder-prefixed where they collide (PolypGen's centre_A/img1, centre_B/img1)
  const ids = uniqueIds(targets.map((t) => t.path));
  const perImage: { id: string; boxes: number; dice?: number; diceBox?: number }[] = [];
  let embedMs = 0,
    decodeMs = 0,
    nBoxes = 0;
  const boxMs: number[] = []; // per box, for the median (the first calls include pipeline compilation)
  const bar = new Progress({ total: targets.length, label: 'masks', unit: 'img' });
  for (const [k, t] of targets.entries()) {
    const { width: w, height: h } = await imageSize(t.path);
    const frame = await decodeImageResized(t.path, f.size, f.size);
    let te = performance.now();
    const emb = noGrad(() => tidy(() => model.embedImage(backboneFeatureTensor(backbone, [frame])))); // once per image
    await emb.data();
    embedMs += performance.now() - te;
    const mask = new Uint8Array(w * h),
      boxOnly = new Uint8Array(w * h);
    for (const box of t.boxes) {
      te = performance.now();
      const scaled = [(box[0] * f.size) / w, (box[1] * f.size) / h, (box[2] * f.size) / w, (box[3] * f.size) / h];
      const bin = noGrad(() =>
        tidy(() => {
          const { masks } = model.forward(emb, { boxes: tensor(scaled, [1, 4]) }, false); // [1, 1, S/2, S/2]
          // SAM's mask_threshold 0
          return gt(postprocessMasks(masks, config.inputImageSize, [f.size, f.size], [h, w]), 0);
        }),
      );
      const v = await bin.data();
      bin.dispose();
      decodeMs += performance.now() - te;
      boxMs.push(performance.now() - te);
      nBoxes++;
      for (let i = 0; i < v.length; i++) if (v[i]) mask[i] = 1;
      boxMask(box, w, h, boxOnly);
    }
    emb.dispose();
    const id = ids[k];
    link(t.path, join(out, 'images', `${id}${extname(t.path)}`));
    writeMaskPng(join(out, 'masks', `${id}.png`), { width: w, height: h, data: mask });
    const row: (typeof perImage)[number] = { id, boxes: t.boxes.length };
    if (t.maskPath) {
      const truth = await readMask(t.maskPath);
      row.dice = dice(mask, truth.data);
      row.diceBox = dice(boxOnly, truth.data);
    }
    perImage.push(row);
    bar.tick(1, row.dice === undefined ? '' : `Dice ${row.dice.toFixed(3)} (box ${row.diceBox!.toFixed(3)})`);
  }
  writeFileSync(join(out, 'train.txt'), ids.join('\n') + '\n');
  const testFrom = f.testFrom ? resolve(f.testFrom) : fromMasks;
  let numTest = 0;
  if (testFrom && existsSync(join(testFrom, 'test.txt'))) {
    // real test masks, for 05-segmenter's evaluation only
    const test = readKvasirSeg(testFrom, { split: 'test', log: null }).records;
    for (const r of test) {
      link(r.imagePath, join(out, 'images', basename(r.imagePath)));
      link(r.maskPath!, join(out, 'masks', basename(r.maskPath!)));
    }
    copyFileSync(join(testFrom, 'test.txt'), join(out, 'test.txt'));
    numTest = test.length;
  }
  const scored = perImage.filter((r) => r.dice !== undefined);
  const avg = (k: 'dice' | 'diceBox') => scored.reduce((s, r) => s + r[k]!, 0) / Math.max(1, scored.length);
  const metrics = {
    weights: weightsPath,
    boxes: fromMasks ? join(out, 'boxes.csv') : resolve(f.boxes!),
    jitter: fromMasks ? f.jitter : null,
    size: f.size,
    images: targets.length,
    boxes_total: nBoxes,
    numTest,
    device: String((await initNode()).adapterName),
    msPerImageEmbedding: embedMs / targets.length,
    msPerBoxDecoder: decodeMs / Math.max(1, nBoxes),
    msPerBoxDecoderMedian: boxMs.sort((a, b) => a - b)[Math.floor(boxMs.length / 2)] ?? null,
    scored: scored.length,
    meanDice: scored.length ? avg('dice') : null,
    meanDiceBox: scored.length ? avg('diceBox') : null,
    perImage,
  };
  writeFileSync(join(out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  if (scored.length)
    console.log(
      `${scored.length} images: mean Dice decoder ${metrics.meanDice!.toFixed(4)}, box as the mask ` +
        `${metrics.meanDiceBox!.toFixed(4)}`,
    );
  console.log(
    `embedding ${metrics.msPerImageEmbedding.toFixed(1)} ms/image, decoder ` +
      `${metrics.msPerBoxDecoder.toFixed(1)} ms/box (median ` +
      `${metrics.msPerBoxDecoderMedian?.toFixed(1)}; with post-processing and readback); wrote ${out}`,
  );
  model.dispose();
}

function link(from: string, to: string): void {
  if (existsSync(to)) rmSync(to);
  symlinkSync(resolve(from), to);
}
