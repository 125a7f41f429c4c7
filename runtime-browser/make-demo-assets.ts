// Writes the in-browser page's demo assets.
// - Sample images (default): a few synthetic frames from runtime-node/synthetic (capsule frames of
//   several CE24 classes and colonoscopy frames with polyps) as small JPEGs in
//   runtime-browser/page/samples/, with samples/index.json listing them; build.ts copies them
//   into the bundle. They are seeded, so rerunning writes the same pictures.
// - Demo checkpoints (--checkpoints DIR): randomly initialised µ models saved as the recipes save
//   theirs (engine/train/checkpoint.ts weightsBytes with `config`/`classes` metadata), to try the
//   page without training anything. Their predictions mean nothing. The browser tests write them
//   to a temporary folder with `writeDemoCheckpoints`; binary checkpoints are not committed.
//   With them, random-init EndoKED checkpoints (writeEndokedDemoCheckpoints): a ToCo-µ CAM
//   classifier and a SAM box-prompt bundle (Polyp-PVT-µ + SAM-decoder-µ at 128²); the page labels
//   them untrained.
// - A SAM box-prompt checkpoint from stage 4's real outputs (--sam-bundle DECODER SEGMENTER OUT):
//   04-sam-pseudo-masks.ts --train writes the decoder (weights.safetensors: neck, prompt encoder,
//   mask decoder) apart from the frozen segmenter it ran over (its --backbone); the page loads
//   both from one file (runtime-browser/page/endoked.ts samBundleBytes).
// Usage: npx tsx runtime-browser/make-demo-assets.ts [--samples] [--checkpoints DIR]
//        npx tsx runtime-browser/make-demo-assets.ts --sam-bundle runs/endoked/04-sam/weights.safetensors \
//          runs/segmenter-synthetic/weights.safetensors out/sam-box.safetensors
//   then: npx tsx runtime-browser/serve.ts (serves out/ and runs/; put DIR under out/).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed, weightsBytes, parseSafetensors, tensor, tidy, noGrad, add, sub, copy_ } from '../engine/index.ts';
import { CE24_CLASSES, renderCapsule, polypSample } from '../runtime-node/synthetic/index.ts';
import type { RgbImage, MaskImage } from '../engine/data/index.ts';
import { Eva02, eva02Config, type Eva02Config } from '../models/eva02.ts';
import { PolypPVT, POLYP_PVT, FEATURE_CHANNELS } from '../models/polyp-pvt.ts';
import { jpegBytes } from '../runtime-node/image.ts';
import { preprocess, rgbToRgba } from './page/preprocess.ts';
import { TocoCam, tocoConfig } from '../models/toco.ts';
import { SamPromptDecoder } from '../models/sam-decoder.ts';
import { samBundleBytes, samConfigForSize } from './page/endoked.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SAMPLES_DIR = join(HERE, 'page', 'samples');

export interface SampleEntry {
  file: string;
  title: string;
  kind: 'capsule' | 'colonoscopy';
}

const SEED = 2024;
const CAPSULE_SIZE = 224; // CE24 frames are 224 x 224
const COLONOSCOPY_SIZE = 256;
const QUALITY = 88; // keeps each file well under 30 KB

/** The sample frames: [file name, title, image]. */
export function sampleImages(): { entry: SampleEntry; image: RgbImage; mask?: MaskImage }[] {
  const capsule = (cls: (typeof CE24_CLASSES)[number], tone: number) => ({
    entry: { file: `capsule-${cls}.jpg`, title: `Capsule: ${cls}`, kind: 'capsule' as const },
    image: renderCapsule({
      seed: SEED + CE24_CLASSES.indexOf(cls),
      width: CAPSULE_SIZE,
      height: CAPSULE_SIZE,
      label: CE24_CLASSES.indexOf(cls),
      tone,
    }),
  });
  const colon = (index: number, title: string) => ({
    entry: { file: `colonoscopy-${index}.jpg`, title, kind: 'colonoscopy' as const },
    ...(({ image, mask }) => ({ image, mask }))(
      polypSample(SEED, index, {
        width: COLONOSCOPY_SIZE,
        height: COLONOSCOPY_SIZE,
        polyps: 1,
        polypArea: [0.06, 0.2],
      }),
    ),
  });
  return [
    capsule('normal-mucosa', 0.3),
    capsule('bleeding', 0.6),
    capsule('ulcer', 0.2),
    capsule('polyp', 0.8),
    colon(0, 'Colonoscopy: polyp'),
    colon(3, 'Colonoscopy: polyp (2)'),
  ];
}

export async function writeSamples(dir = SAMPLES_DIR): Promise<SampleEntry[]> {
  mkdirSync(dir, { recursive: true });
  const entries: SampleEntry[] = [];
  for (const { entry, image } of sampleImages()) {
    const bytes = await jpegBytes(image, QUALITY);
    if (bytes.length > 30_000)
      throw new Error(`${entry.file}: ${bytes.length} bytes, over the 30 KB budget for committed samples`);
    writeFileSync(join(dir, entry.file), bytes);
    entries.push(entry);
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify(entries, null, 2) + '\n');
  return entries;
}

/** The µ EVA-02 of the demo: the recipes' 64² µ preset; a larger head init so outputs differ. */
export function demoEvaConfig(numClasses: number = CE24_CLASSES.length): Eva02Config {
  return eva02Config('mu', { numClasses, headInitScale: 1 });
}

/** Random-init µ checkpoints: EVA-02 (10 CE24 classes) and Polyp-PVT (64² input). Returns their paths. */
export async function writeDemoCheckpoints(dir: string, seed = 7): Promise<{ eva02: string; polypPvt: string }> {
  mkdirSync(dir, { recursive: true });
  manualSeed(seed);
  const cfg = demoEvaConfig();
  const eva = new Eva02(cfg);
  const evaPath = join(dir, 'eva02-mu-demo.safetensors');
  writeFileSync(
    evaPath,
    await weightsBytes(eva, {
      config: JSON.stringify(cfg),
      classes: JSON.stringify(CE24_CLASSES),
      note: 'random initialisation (demo)',
    }),
  );
  eva.dispose();
  const pvt = new PolypPVT(POLYP_PVT.mu).eval();
  // A random segmenter marks every pixel or none; shifting its two output biases so that half of
  // a sample frame's pixels are above 0.5 lets the demo show a mask and its contour.
  const frame = sampleImages().find((s) => s.entry.kind === 'colonoscopy')!.image;
  const x = tensor(
    preprocess(
      { width: frame.width, height: frame.height, data: rgbToRgba(frame.data, frame.width, frame.height) },
      64,
      64,
      'none',
    ).input,
    [1, 3, 64, 64],
  );
  const logits = noGrad(() => tidy(() => add(...pvt.forward(x))));
  const sorted = Float32Array.from(await logits.data()).sort(),
    median = sorted[sorted.length >> 1];
  x.dispose();
  logits.dispose();
  noGrad(() => {
    for (const conv of [pvt.out_CFM, pvt.out_SAM]) {
      const b = sub(conv.bias!, median / 2);
      copy_(conv.bias!, b, 'demo bias');
      b.dispose();
    }
  });
  const pvtPath = join(dir, 'polyp-pvt-mu-demo.safetensors');
  writeFileSync(
    pvtPath,
    await weightsBytes(pvt, {
      model: 'polyp_pvt',
      preset: 'mu',
      config: JSON.stringify(pvt.config),
      size: '64',
      note: 'random initialisation (demo)',
    }),
  );
  pvt.dispose();
  return { eva02: evaPath, polypPvt: pvtPath };
}

/** Random-init EndoKED checkpoints: ToCo-µ (64²) and a SAM box-prompt bundle at `samSize`. Returns their paths. */
export async function writeEndokedDemoCheckpoints(
  dir: string,
  seed = 7,
  samSize = 128,
): Promise<{ toco: string; sam: string }> {
  mkdirSync(dir, { recursive: true });
  manualSeed(seed);
  const toco = new TocoCam(tocoConfig('mu'));
  const tocoPath = join(dir, 'toco-cam-mu-demo.safetensors');
  writeFileSync(
    tocoPath,
    await weightsBytes(toco, {
      model: 'toco_cam',
      config: JSON.stringify(toco.cfg),
      note: 'random initialisation (demo)',
    }),
  );
  toco.dispose();
  const seg = new PolypPVT(POLYP_PVT.mu),
    dec = new SamPromptDecoder(samConfigForSize(samSize), { neckInChans: FEATURE_CHANNELS });
  const samPath = join(dir, 'sam-box-mu-demo.safetensors');
  writeFileSync(
    samPath,
    await samBundleBytes(await weightsBytes(dec), await weightsBytes(seg), samSize, 'random initialisation (demo)'),
  );
  seg.dispose();
  dec.dispose();
  return { toco: tocoPath, sam: samPath };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const ck = args.indexOf('--checkpoints');
  const sb = args.indexOf('--sam-bundle');
  if (sb >= 0) {
    const [decoder, segmenter, out] = args.slice(sb + 1, sb + 4);
    if (!out)
      throw new Error(
        "--sam-bundle needs DECODER SEGMENTER OUT: stage 4's weights.safetensors, the Polyp-PVT-µ " +
          'weights it ran over (--backbone), the file to write',
      );
    const dec = new Uint8Array(readFileSync(decoder));
    const cfg = JSON.parse(parseSafetensors(dec).metadata?.config ?? 'null') as { inputImageSize?: number[] } | null;
    if (!cfg?.inputImageSize)
      throw new Error(
        `${decoder}: no decoder config in its metadata (is it 04-sam-pseudo-masks.ts's weights.safetensors?)`,
      );
    const { initNode, shutdown } = await import('../runtime-node/index.ts');
    await initNode();
    writeFileSync(out, await samBundleBytes(dec, new Uint8Array(readFileSync(segmenter)), cfg.inputImageSize[0]));
    console.log(`wrote ${out} (decoder for ${cfg.inputImageSize[0]}² frames)`);
    await shutdown();
  }
  if (args.includes('--samples') || (ck < 0 && sb < 0)) {
    const entries = await writeSamples();
    console.log(`wrote ${entries.length} samples to ${SAMPLES_DIR}`);
  }
  if (ck >= 0) {
    if (!args[ck + 1]) throw new Error('--checkpoints needs a folder');
    const { initNode, shutdown } = await import('../runtime-node/index.ts');
    await initNode();
    const paths = await writeDemoCheckpoints(args[ck + 1]);
    const endoked = await writeEndokedDemoCheckpoints(args[ck + 1]);
    console.log(`wrote ${paths.eva02}, ${paths.polypPvt}, ${endoked.toco} and ${endoked.sam}`);
    await shutdown();
  }
}
