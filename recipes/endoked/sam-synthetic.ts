// EndoKED stage 4 (04-sam-pseudo-masks.ts --train), its training data: seeded synthetic colonoscopy
// frames with exact masks (runtime-node/synthetic; never Kvasir-SEG or any real mask), one instance
// per polyp (8-connected component; slivers cut by the field of view dropped) with its box and its
// own mask at the decoder's S/2 resolution, and the frozen backbone's features of every frame cached
// once as safetensors (recipes/endoked/sam-kit.ts), keyed by the backbone, seed, range and sizes.
// SAM (Kirillov et al. 2023, arXiv 2304.02643) fine-tunes its decoder the same way, on image
// embeddings computed once.
import { join } from 'node:path';
import type { MaskImage } from '../../engine/data/index.ts';
import { polypSample } from '../../runtime-node/synthetic/index.ts';
import { FEATURE_CHANNELS, type PolypPVT } from '../../models/polyp-pvt.ts';
import { resizeImage, resizeMask } from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { backboneFeatures, featureCacheBytes, readFeatureCache, components, type Box } from './sam-kit.ts';
import type { SamFlags } from './04-sam-pseudo-masks.ts';

export interface Instance {
  image: number;
  box: Box;
  target: Float32Array;
}

/**
 * Synthetic frames `first` .. `first + count - 1` (at least one polyp each): features on the S/8 grid
 * (read from `cacheDir` when cached for the same inputs), one instance per polyp.
 */
export async function syntheticInstances(
  f: SamFlags,
  backbone: PolypPVT,
  first: number,
  count: number,
  cacheDir: string,
  backboneId: string,
) {
  const m = f.size / 2; // mask resolution of the decoder
  const frames = [],
    instances: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const s = polypSample(f.seed, first + i, { width: f.frameSize, height: f.frameSize, polyps: [0, 0.75, 0.25] });
    frames.push(s.image);
    for (const c of components(s.mask)) {
      if (c.area < 0.002 * f.frameSize * f.frameSize) continue; // slivers cut by the field of view
      const own: MaskImage = {
        width: f.frameSize,
        height: f.frameSize,
        data: new Uint8Array(f.frameSize * f.frameSize),
      };
      for (const p of c.pixels) own.data[p] = 1;
      instances.push({ image: i, box: c.box, target: Float32Array.from(resizeMask(own, m, m).data) });
    }
  }
  const meta = {
    backbone: backboneId,
    seed: String(f.seed),
    first: String(first),
    count: String(count),
    size: String(f.size),
    frame: String(f.frameSize),
  };
  const path = join(cacheDir, `features-${first}-${count}-s${f.size}.safetensors`);
  let cache = readFeatureCache(readIfExists(path), meta);
  if (!cache) {
    const g = f.size / 8,
      per = FEATURE_CHANNELS * g * g,
      features = new Float32Array(count * per);
    const bar = new Progress({ total: count, label: 'cache', unit: 'img' });
    for (let i = 0; i < count; i += 8) {
      const batch = await Promise.all(frames.slice(i, i + 8).map((im) => resizeImage(im, f.size, f.size)));
      features.set(await backboneFeatures(backbone, batch), i * per);
      bar.tick(batch.length);
    }
    cache = { features, shape: [count, FEATURE_CHANNELS, g, g], meta };
    writeAtomic(path, featureCacheBytes(cache));
  }
  return { cache, instances };
}
