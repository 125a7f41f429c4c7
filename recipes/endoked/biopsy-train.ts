// One arm of the optical-biopsy recipe (07-optical-biopsy.ts, spec §2.7; [K] zwyang6/ENDOKED
// EndoKED_MIL/fine_tuning_Encoder_for_pathology_withGTInstanceLabel.py): the MIL frame encoder
// (from stage 2's encoder.safetensors, or from scratch) with a 2-class head, trained on per-frame
// pathology labels with the reference's augmentation (RandomResizedCrop, flips, RandomAffine,
// ColorJitter, its mean/std) and NLL of the softmax (+1e-5 inside the log); SGD or Adam;
// resumable atomic checkpoints; a non-finite loss stops the run before any checkpoint holds it.
// Then the eval-mode scores the report is made of.
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  softmax,
  log,
  add,
  mul,
  sum,
  mean,
  neg,
  manualSeed,
  defaultGenerator,
  SGD,
  Adam,
  RandomSampler,
  DataOrder,
  Rng,
  imagesToChw,
  augmentBatch,
  composeAffine,
  type Affine2x3,
  sampleParams,
  trainStateBytes,
  restoreTrainState,
  type AugmentConfig,
  parseSafetensors,
} from '../../engine/index.ts';
import { OpticalBiopsyNet, loadEncoder } from '../../models/optical-biopsy.ts';
import { MIL, MilEncoder, type MilConfig } from '../../models/mil.ts';
import type { PathologyRecord } from '../../runtime-node/pathology-set.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { FlagError } from '../../runtime-node/flags.ts';
import type { BiopsyData } from './biopsy-data.ts';
import type { BiopsyFlags } from './07-optical-biopsy.ts';

export type Arm = 'mil-init' | 'scratch';

/** The encoder to fine-tune: --init's bytes and the architecture stage 2 stored in its metadata. */
export interface EncoderInit {
  initPath: string | undefined;
  initBytes: Uint8Array | undefined;
  config: MilConfig;
}

/** Reads --init (when given): its MilConfig from the metadata, else the --model preset; --image-size on top. */
export function readInit(f: BiopsyFlags, initPath: string | undefined, script: string): EncoderInit {
  let config: MilConfig = MIL[f.model];
  const initBytes = initPath ? new Uint8Array(readFileSync(initPath)) : undefined;
  if (initBytes) {
    let meta: Record<string, string> | undefined;
    try {
      meta = parseSafetensors(initBytes).metadata;
    } catch (e) {
      throw new FlagError(
        `${script}: --init "${initPath}" is not a safetensors file (${e instanceof Error ? e.message : e})`,
      );
    }
    if (meta?.config) config = { ...MIL[f.model], ...(JSON.parse(meta.config) as Partial<MilConfig>) };
    else console.log(`${initPath} has no config metadata: assuming the --model ${f.model} encoder`);
  }
  if (f.imageSize) config = { ...config, imageSize: f.imageSize };
  return { initPath, initBytes, config };
}

const NORMALIZE = {
  mean: [0.4738405, 0.30310306, 0.20231445] as [number, number, number],
  std: [0.2768913, 0.2088029, 0.16106644] as [number, number, number],
};

/** What both arms share: flags, data, encoder, augmentation, and the signature a state must match to resume. */
export interface ArmContext extends EncoderInit {
  f: BiopsyFlags;
  outDir: string;
  data: BiopsyData;
  augment: AugmentConfig;
  evalCfg: AugmentConfig;
  signature: string;
}

export function armContext(f: BiopsyFlags, outDir: string, enc: EncoderInit, data: BiopsyData): ArmContext {
  const S = enc.config.imageSize;
  const augment: AugmentConfig = {
    size: [S, S],
    hflip: 0.5,
    vflip: 0.5,
    randomResizedCrop: { p: 1, scale: [0.75, 1], ratio: [0.75, 1.33] },
    colorJitter: { p: 1, brightness: f.jitter[0], contrast: f.jitter[1], saturation: f.jitter[2], hue: f.jitter[3] },
    normalize: NORMALIZE,
  };
  const signature = JSON.stringify({
    data: data.csv,
    config: enc.config,
    jitter: f.jitter,
    batch: f.batchSize,
    optimizer: f.optimizer,
    lr: f.lr,
    momentum: f.momentum,
    seed: f.seed,
  });
  return { ...enc, f, outDir, data, augment, evalCfg: { size: [S, S], normalize: NORMALIZE }, signature };
}

/**
 * torchvision RandomAffine(degrees 0, translate .1, scale .8-1.2, shear 10) as an output -> input map in [0, 1]
 * coordinates.
 */
function randomAffineInverse(r: Rng): Affine2x3 {
  const tx = r.uniform(-0.1, 0.1),
    ty = r.uniform(-0.1, 0.1),
    s = r.uniform(0.8, 1.2),
    sh = Math.tan((r.uniform(-10, 10) * Math.PI) / 180);
  // forward: p' = c + t + s [[1, sh], [0, 1]] (p - c); inverse: p = c + (1/s) [[1, -sh], [0, 1]] (p' - c - t)
  const a = 1 / s,
    b = -sh / s,
    e = 1 / s,
    ox = 0.5 + tx,
    oy = 0.5 + ty;
  return [a, b, 0.5 - a * ox - b * oy, 0, e, 0.5 - e * oy];
}

interface Extra {
  step: number;
  losses: number[];
  seconds: number;
  signature: string;
}

/** An arm being trained: its network and optimizer, and where training stands. */
export interface ArmState {
  arm: Arm;
  dir: string;
  /** --init for the mil-init arm, null for scratch. */
  init: string | null;
  encoder: MilEncoder;
  net: OpticalBiopsyNet;
  opt: SGD | Adam;
  step: number;
  losses: number[];
  seconds: number;
}

/**
 * Builds the arm's network (the same seeded head, and scratch encoder, for both arms), its
 * optimizer and data order, resumes from <out>/<arm>/state.safetensors when allowed, and trains to
 * --steps or --max-minutes. Returns the state, and whether training reached --steps.
 */
export async function trainArm(ctx: ArmContext, arm: Arm): Promise<{ state: ArmState; done: boolean }> {
  const { f, data } = ctx,
    train = data.train,
    S = ctx.config.imageSize;
  const dir = join(ctx.outDir, arm);
  mkdirSync(dir, { recursive: true });
  manualSeed(f.seed); // both arms draw the same head (and, for scratch, encoder) initialisation
  const encoder = new MilEncoder(ctx.config);
  const net = new OpticalBiopsyNet(encoder, encoder.outDim, 2);
  const init = arm === 'mil-init' ? ctx.initPath! : null;
  if (init) console.log(`[${arm}] encoder from ${init} (${loadEncoder(encoder, ctx.initBytes!, init)} tensors)`);
  net.flattenParameters();
  const opt =
    f.optimizer === 'adam'
      ? new Adam(net.parameters(), { lr: f.lr })
      : new SGD(net.parameters(), { lr: f.lr, momentum: f.momentum });
  const order = new DataOrder(new RandomSampler(train.length), {
    batchSize: Math.min(f.batchSize, train.length),
    dropLast: true,
    seed: f.seed,
  });
  const augRng = new Rng(f.seed + 1);
  const statePath = join(dir, 'state.safetensors');
  const st: ArmState = { arm, dir, init, encoder, net, opt, step: 0, losses: [], seconds: 0 };
  const saved = f.resume ? readIfExists(statePath) : null;
  if (saved) {
    const r = restoreTrainState<Extra>(saved, { model: net, optimizer: opt, generator: defaultGenerator }, statePath);
    if (r.extra.signature !== ctx.signature)
      throw new Error(
        `${statePath} was written by a run with other settings (${r.extra.signature}); this run: ` +
          `${ctx.signature}. Use another --out or --no-resume.`,
      );
    ({ step: st.step, losses: st.losses, seconds: st.seconds } = r.extra);
    order.loadStateDict(r.data!);
    augRng.setState(r.rngs!.augment);
    console.log(`[${arm}] resumed from ${statePath} at step ${st.step}`);
  }
  let savedAt = saved ? st.step : -1;
  const checkpoint = async () => {
    writeAtomic(
      statePath,
      await trainStateBytes<Extra>({
        model: net,
        optimizer: opt,
        generator: defaultGenerator,
        data: order.stateDict(),
        rngs: { augment: augRng.getState() },
        extra: { step: st.step, losses: st.losses, seconds: st.seconds, signature: ctx.signature },
      }),
    );
    savedAt = st.step;
  };
  const started = performance.now(),
    deadline = f.maxMinutes ? started + f.maxMinutes * 60_000 : Infinity;
  if (st.step >= f.steps) return { state: st, done: true };
  const bar = new Progress({ total: f.steps, label: `train ${arm}`, unit: 'step' });
  bar.set(st.step);
  net.train();
  while (st.step < f.steps && performance.now() < deadline) {
    const t0 = performance.now();
    const { indices } = order.nextBatch();
    const batch = Array.from(indices, (i) => train[i]);
    const chw = imagesToChw(batch.map((r) => data.imageOf.get(r)!));
    const onehot = new Float32Array(batch.length * 2);
    batch.forEach((r, k) => {
      onehot[2 * k + r.label] = 1;
    });
    const params = batch.map(() => sampleParams(ctx.augment, S, S, augRng));
    // crop/flips, then the affine, as torchvision's order
    for (const p of params) p.affine = composeAffine(p.affine, randomAffineInverse(augRng));
    const loss = tidy(() => {
      const x = augmentBatch(tensor(chw.data, chw.shape), null, ctx.augment, augRng, params).images;
      const prob = softmax(net.forward(x), -1); // [B, 2]
      // the reference's NLL
      const l = neg(mean(sum(mul(tensor(onehot, [batch.length, 2]), log(add(prob, 1e-5))), 1)));
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    const v = await loss.item();
    loss.dispose();
    if (!Number.isFinite(v)) {
      throw new Error(
        `[${arm}] loss is ${v} at step ${st.step + 1}: stopped before writing a checkpoint ` +
          `(${savedAt >= 0 ? `${statePath} keeps step ${savedAt}` : 'none was written'}). Lower ` +
          `--lr.`,
      );
    }
    st.step++;
    st.losses.push(v);
    st.seconds += (performance.now() - t0) / 1000;
    bar.tick(1, `loss ${v.toFixed(4)}`);
    if (st.step % f.ckptEvery === 0 || st.step === f.steps) await checkpoint();
  }
  if (st.step < f.steps) {
    await checkpoint();
    console.log(
      `[${arm}] stopped at step ${st.step}/${f.steps} (--max-minutes); run the same command again to continue`,
    );
    return { state: st, done: false };
  }
  return { state: st, done: true };
}

/** Eval-mode neoplastic probabilities of the given frames. */
export async function predict(ctx: ArmContext, net: OpticalBiopsyNet, rs: PathologyRecord[]): Promise<Float64Array> {
  net.eval();
  const out = new Float64Array(rs.length);
  for (let i = 0; i < rs.length; i += 64) {
    const chunk = rs.slice(i, i + 64),
      chw = imagesToChw(chunk.map((r) => ctx.data.imageOf.get(r)!));
    const p = tidy(() =>
      noGrad(() => {
        const x = augmentBatch(tensor(chw.data, chw.shape), null, ctx.evalCfg, new Rng(0)).images;
        return softmax(net.forward(x), -1); // [B, 2]
      }),
    );
    const d = await p.data();
    p.dispose();
    for (let k = 0; k < chunk.length; k++) out[i + k] = d[2 * k + 1];
  }
  net.train();
  return out;
}
