// EndoKED stage 4 (04-sam-pseudo-masks.ts --train): the SAM-style decoder (models/sam-decoder.ts,
// SAM-decoder-µ plus SAM's neck) trained on synthetic polyp instances (sam-synthetic.ts) with their
// boxes as prompts, spec §2.3 "CAM -> box -> SAM". SAM (Kirillov et al. 2023, arXiv 2304.02643, §A):
// box prompts with noise (each coordinate N(0, (0.1 side)²), at most 20 px); loss = 20 focal + 1 Dice
// on the single-mask output plus the best of the 3 multimask outputs, and MSE between the IoU head
// and each mask's actual IoU; AdamW. Produces in the output folder: state.safetensors (resumable,
// written every --ckpt-every steps; a non-finite loss stops before that step is checkpointed),
// weights.safetensors (image_encoder.neck.*, prompt_encoder.*, mask_decoder.*), loss.png and
// train-metrics.json (held-out synthetic Dice: the decoder's single mask vs the box as the mask).
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  add,
  mean,
  min,
  narrow,
  reshape,
  mseLoss,
  manualSeed,
  defaultGenerator,
  AdamW,
  RandomSampler,
  DataOrder,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  Rng,
} from '../../engine/index.ts';
import { samPromptDecoder, type SamDecoderConfig, type SamPromptDecoder } from '../../models/sam-decoder.ts';
import { FEATURE_CHANNELS, type PolypPVT } from '../../models/polyp-pvt.ts';
import { initNode } from '../../runtime-node/index.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { decoderConfig, samMaskLoss, maskIou, jitterBox, boxMask, dice, type Box } from './sam-kit.ts';
import { syntheticInstances } from './sam-synthetic.ts';
import type { SamFlags } from './04-sam-pseudo-masks.ts';

type Instances = Awaited<ReturnType<typeof syntheticInstances>>;

interface Extra {
  step: number;
  losses: number[];
  seconds: number;
  size: number;
  batchSize: number;
  trainImages: number;
}

/** The decoder, its optimizer, data order and box-noise stream, and where training stands. */
interface DecoderRun {
  config: SamDecoderConfig;
  model: SamPromptDecoder;
  optimizer: AdamW;
  order: DataOrder;
  noise: Rng;
  statePath: string;
  step: number;
  losses: number[];
  seconds: number;
}

/** --train: synthetic instances -> trained decoder, loss plot and held-out metrics in `out`. */
export async function trainDecoder(f: SamFlags, backbone: PolypPVT, backbonePath: string, out: string) {
  const backboneId =
    backbonePath === 'random' ? 'random' : `${basename(backbonePath)}:${readFileSync(backbonePath).length}`;
  const t0 = performance.now();
  const data = await syntheticInstances(f, backbone, 0, f.trainImages, join(out, 'cache'), backboneId);
  const val = await syntheticInstances(f, backbone, 1_000_000, f.valImages, join(out, 'cache'), backboneId);
  console.log(
    `synthetic: ${f.trainImages} frames, ${data.instances.length} polyp instances ` +
      `(+${val.instances.length} held out); features in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const run = startDecoder(f, data.instances.length, out);
  await trainSteps(run, f, data);
  const { config, model, step, losses, seconds } = run;
  writeAtomic(
    join(out, 'weights.safetensors'),
    await weightsBytes(model, { model: 'sam_decoder', config: JSON.stringify(config), backbone: backboneId }),
  );
  await writeChartPng(
    join(out, 'loss.png'),
    plot.lineChart(
      [
        { name: 'loss', y: losses, color: [170, 190, 215] },
        { name: 'mean of 20 steps', y: plot.movingAverage(losses, 20), color: [31, 119, 180] },
      ],
      { title: 'SAM decoder: 20 focal + Dice + IoU MSE', xLabel: 'step', yLabel: 'loss' },
    ),
  );
  const scores = await heldOutDice(model, val, f);
  const m = f.size / 2;
  const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
  const metrics = {
    steps: step,
    trainSeconds: Math.round(seconds),
    secondsPerStep: seconds / Math.max(1, step),
    finalLoss: losses.at(-1) ?? null,
    device: String((await initNode()).adapterName),
    heldOut: {
      instances: val.instances.length,
      maskSize: m,
      meanDiceDecoder: avg(scores.decoder),
      meanDiceBox: avg(scores.box),
    },
  };
  writeFileSync(join(out, 'train-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  console.log(
    `held-out synthetic (${val.instances.length} polyps, ${m}² masks): mean Dice decoder ` +
      `${metrics.heldOut.meanDiceDecoder.toFixed(4)}, box ${metrics.heldOut.meanDiceBox.toFixed(4)}`,
  );
  console.log(
    `trained ${step} steps in ${seconds.toFixed(0)} s; wrote ${out}/weights.safetensors, ` +
      `state.safetensors, loss.png, train-metrics.json`,
  );
  run.optimizer.dispose();
  model.dispose();
}

/** Seeded decoder, AdamW, data order and box noise; resumed from <out>/state.safetensors (--resume). */
function startDecoder(f: SamFlags, numInstances: number, out: string): DecoderRun {
  manualSeed(f.seed);
  const config = decoderConfig(f.size);
  const model = samPromptDecoder(config, { neckInChans: FEATURE_CHANNELS });
  model.flattenParameters();
  const optimizer = new AdamW(model.parameters(), { lr: f.lr, weightDecay: f.weightDecay });
  const order = new DataOrder(new RandomSampler(numInstances), { batchSize: f.batchSize, seed: f.seed });
  const noise = new Rng(f.seed + 1);
  console.log(
    `model: SAM decoder (${config.embedDim}-d, ${config.numHeads} heads, grid ` +
      `${config.imageEmbeddingSize.join('x')}) + neck, ${(model.numParameters() / 1e3).toFixed(1)}k ` +
      `parameters`,
  );
  const statePath = join(out, 'state.safetensors');
  const run: DecoderRun = { config, model, optimizer, order, noise, statePath, step: 0, losses: [], seconds: 0 };
  const saved = f.resume ? readIfExists(statePath) : null;
  if (saved) {
    const r = restoreTrainState<Extra>(saved, { model, optimizer, generator: defaultGenerator }, statePath);
    if (r.extra.size !== f.size || r.extra.batchSize !== f.batchSize || r.extra.trainImages !== f.trainImages) {
      throw new Error(
        `${statePath} was written with size ${r.extra.size}, batch ${r.extra.batchSize}, ` +
          `${r.extra.trainImages} frames; use another --out or --no-resume`,
      );
    }
    ({ step: run.step, losses: run.losses, seconds: run.seconds } = r.extra);
    order.loadStateDict(r.data!);
    noise.setState(r.rngs!.noise);
    console.log(`resumed from ${statePath} at step ${run.step}`);
  }
  return run;
}

async function checkpoint(run: DecoderRun, f: SamFlags): Promise<void> {
  const { model, optimizer, order, noise, step, losses, seconds } = run;
  writeAtomic(
    run.statePath,
    await trainStateBytes({
      model,
      optimizer,
      generator: defaultGenerator,
      data: order.stateDict(),
      rngs: { noise: noise.getState() },
      extra: {
        step,
        losses,
        seconds,
        size: f.size,
        batchSize: f.batchSize,
        trainImages: f.trainImages,
      } satisfies Extra,
    }),
  );
}

/** Steps from run.step to --steps (or until --max-minutes) on noisy box prompts; checkpoints as it goes. */
async function trainSteps(run: DecoderRun, f: SamFlags, data: Instances): Promise<void> {
  const { model, optimizer, order, noise } = run;
  const [, c, g] = data.cache.shape,
    per = c * g * g,
    m = f.size / 2,
    scale = f.size / f.frameSize;
  const deadline = f.maxMinutes ? performance.now() + f.maxMinutes * 60_000 : Infinity;
  const bar = new Progress({ total: f.steps, label: 'train', unit: 'step' });
  bar.set(run.step);
  model.train();
  while (run.step < f.steps && performance.now() < deadline) {
    const ts = performance.now();
    const idx = Array.from(order.nextBatch().indices, (i) => data.instances[i]);
    const b = idx.length,
      feats = new Float32Array(b * per),
      targets = new Float32Array(b * m * m),
      boxes: number[] = [];
    idx.forEach((inst, k) => {
      feats.set(data.cache.features.subarray(inst.image * per, (inst.image + 1) * per), k * per);
      targets.set(inst.target, k * m * m);
      boxes.push(
        ...jitterBox(inst.box, noise, f.boxNoise, f.boxNoiseMax, f.frameSize, f.frameSize).map((v) => v * scale),
      );
    });
    const loss = tidy(() => {
      const emb = model.embedImage(tensor(feats, [b, c, g, g]));
      const { masks, iou } = model.predictAll(emb, { boxes: tensor(boxes, [b, 4]) });
      const target = tensor(targets, [b, 1, m, m]);
      const per = samMaskLoss(masks, target); // [B, T]
      const t = per.shape[1];
      // single + best multimask
      const maskLoss = mean(add(reshape(narrow(per, 1, 0, 1), [b]), min(narrow(per, 1, 1, t - 1), 1)));
      const l = add(maskLoss, mseLoss(iou, maskIou(masks, target)));
      backward(l);
      return l;
    });
    const value = await loss.item();
    loss.dispose();
    if (!Number.isFinite(value)) {
      optimizer.zeroGrad();
      throw new Error(`loss became ${value} at step ${run.step}; no checkpoint written for this step (lower --lr?)`);
    }
    optimizer.step();
    optimizer.zeroGrad();
    run.losses.push(value);
    run.step++;
    run.seconds += (performance.now() - ts) / 1000;
    bar.tick(1, `loss ${value.toFixed(4)}`);
    if (run.step % f.ckptEvery === 0 || run.step === f.steps) await checkpoint(run, f);
  }
  if (run.step < f.steps) {
    await checkpoint(run, f);
    console.log(`stopped at step ${run.step} after --max-minutes ${f.maxMinutes}; run again to continue`);
  }
}

/** Held-out synthetic frames, exact boxes: Dice of the decoder's single mask and of the box itself. */
async function heldOutDice(model: SamPromptDecoder, val: Instances, f: SamFlags) {
  const [, c, g] = val.cache.shape,
    per = c * g * g,
    m = f.size / 2,
    scale = f.size / f.frameSize;
  model.eval();
  const scores = { decoder: [] as number[], box: [] as number[] };
  for (const inst of val.instances) {
    const feats = val.cache.features.subarray(inst.image * per, (inst.image + 1) * per);
    const logits = noGrad(() =>
      tidy(
        () =>
          model.forward(
            model.embedImage(tensor(feats, [1, c, g, g])),
            {
              boxes: tensor(
                inst.box.map((v) => v * scale),
                [1, 4],
              ),
            },
            false,
          ).masks,
      ),
    );
    const pred = await logits.data();
    logits.dispose();
    scores.decoder.push(
      dice(
        Array.from(pred, (v) => (v > 0 ? 1 : 0)),
        inst.target,
      ),
    );
    scores.box.push(dice(boxMask(inst.box.map((v) => (v * m) / f.frameSize) as Box, m, m), inst.target));
  }
  return scores;
}
