// Input statistics of a model's training frames for the page's out-of-domain hint
// (page/domain.ts): the four per-frame numbers of every listed image, as their mean and standard
// deviation, written as JSON for make-model-card.ts --input-stats.
// Usage: npx tsx runtime-browser/input-stats.ts --list FRAMES.txt --of "what the frames are" --out stats.json
//   FRAMES.txt: one image path per line, e.g. for Kvasir-SEG's train split
//   sed 's#^#../shared/data/kvasir-seg/images/#; s#$#.jpg#' ../shared/data/kvasir-seg/train.txt > frames.txt
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeImage } from '../runtime-node/image.ts';
import { rgbToRgba } from './page/preprocess.ts';
import { imageFeatures, statsOf } from './page/domain.ts';

export async function main(argv: string[]): Promise<void> {
  const get = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    if (i < 0 || !argv[i + 1]) throw new Error(`--${k} is required`);
    return argv[i + 1];
  };
  const list = readFileSync(get('list'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (!list.length) throw new Error(`${get('list')}: no image paths`);
  const features: number[][] = [];
  for (const path of list) {
    const img = await decodeImage(path).catch((e: unknown) => {
      throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    });
    features.push(
      imageFeatures({ width: img.width, height: img.height, data: rgbToRgba(img.data, img.width, img.height) }),
    );
  }
  const stats = statsOf(features, get('of'));
  writeFileSync(get('out'), JSON.stringify(stats, null, 2) + '\n');
  console.log(
    `${list.length} frames: mean ${stats.mean.map((v) => v.toFixed(1)).join(', ')}; sd ` +
      `${stats.std.map((v) => v.toFixed(1)).join(', ')} -> ${get('out')}`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`runtime-browser/input-stats.ts: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
