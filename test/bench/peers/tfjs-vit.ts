// Peer benchmark: one training step (forward + backward + SGD update) of an EVA-02-Ti-shaped ViT
// written with TensorFlow.js ops, on tfjs's WebGPU backend over the same Dawn adapter the engine
// uses. The engine's own ViT bench compares against the median step time measured here.
//
// Architecture (recipes/SPEC.md §1.2; timm `eva.py` eva02_tiny_patch14_224, BAAI EVA-02
// `modeling_finetune.py`): Conv2d(3, 192, k=14, s=14) patch embed, cls token, learned pos_embed,
// 12 pre-LN blocks (LayerNorm eps 1e-6, no layer scale) with fused qkv (bias on q and v only,
// k bias is a zero constant), 3 heads of 64, 2D RoPE on the patch tokens of q and k
// (x·cos + rot(x)·sin, rot = pair swap with negation), packed SwiGLU MLP 192 -> 2·512 -> 192,
// mean over patch tokens -> LayerNorm -> Linear(192, 10). Loss: softmax cross-entropy.
//
// tfjs works in NHWC; the input is [B, S, S, 3]. Must run in its own process (the CLI next to
// this file): tfjs keeps its own GPUDevice and global engine state.
//
// tfjs-core's Node bundle registers no gradients (the `@tensorflow/tfjs` union package adds them
// from tfjs-core's ES modules). So tfjs-core, its gradients and the WebGPU backend are bundled
// here with esbuild from their ES modules into one temporary CommonJS file (one tfjs instance).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { create, globals } from 'webgpu';
import type * as TF from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { installPollingBackoff } from '../../../runtime-node/polling.ts';

type Tfjs = typeof TF & { WebGPUBackend: typeof WebGPUBackend };

/** tfjs-core + all gradients + the WebGPU backend, as one module; navigator.gpu must be set. */
async function loadTfjs(): Promise<Tfjs> {
  const entry = [
    "export * from '@tensorflow/tfjs-core';",
    "import '@tensorflow/tfjs-core/dist/register_all_gradients';",
    "export { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';",
  ].join('\n');
  const out = await build({
    stdin: { contents: entry, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    mainFields: ['module', 'main'],
    write: false,
    logLevel: 'error',
    external: ['node-fetch'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-peer-'));
  try {
    const file = join(dir, 'tfjs-webgpu.cjs');
    writeFileSync(file, out.outputFiles[0].contents);
    return createRequire(import.meta.url)(file) as Tfjs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TfjsVitOptions {
  batch: number;
  size: number;
  steps: number;
  warmup: number;
  /** Dawn polling back-off (runtime-node/polling.ts), as the engine uses; default true. */
  pollingBackoff?: boolean;
}

export interface TfjsVitResult {
  msPerStep: number;
  imagesPerSec: number;
  backend: string;
  adapter: string;
  /** Every timed step (ms), in order. */
  stepsMs: number[];
  /** Wall time (ms) of the warm-up steps (shader compilation included). */
  warmupMs: number;
  /** Loss of every step, warm-up included (same batch each step: it should go down). */
  losses: number[];
  tfjsVersion: string;
}

const DIM = 192,
  DEPTH = 12,
  HEADS = 3,
  HEAD_DIM = 64,
  HIDDEN = 512,
  PATCH = 14,
  CLASSES = 10;
const LN_EPS = 1e-6;
const ROPE_REF = 16; // ref_feat_shape (16, 16) of the 224² checkpoint

/** sin/cos tables [g·g, hd] of EVA-02's 2D RoPE (spec §1.2; timm RotaryEmbeddingCat). */
export function ropeTables(g: number, hd = HEAD_DIM): { sin: Float32Array; cos: Float32Array } {
  const nb = hd / 4;
  const bands = Array.from({ length: nb }, (_, j) => Math.pow(10000, -j / nb));
  const sin = new Float32Array(g * g * hd),
    cos = new Float32Array(g * g * hd);
  for (let y = 0; y < g; y++)
    for (let x = 0; x < g; x++) {
      const ty = (y * ROPE_REF) / g,
        tx = (x * ROPE_REF) / g;
      for (let d = 0; d < hd; d++) {
        const p = d >> 1; // repeat_interleave(2) of [y·b, x·b]
        const a = p < nb ? ty * bands[p] : tx * bands[p - nb];
        sin[(y * g + x) * hd + d] = Math.sin(a);
        cos[(y * g + x) * hd + d] = Math.cos(a);
      }
    }
  return { sin, cos };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Builds the model's variables and returns the loss function of one batch. */
function buildModel(tf: typeof TF, batch: number, size: number) {
  if (size % PATCH) throw new Error(`tfjsVitTrainStep: size ${size} is not a multiple of the patch ${PATCH}`);
  const g = size / PATCH,
    P = g * g,
    N = P + 1;
  const vars: TF.Variable[] = [];
  const param = (shape: number[], init: 'normal' | 'zeros' | 'ones', std = 0.02): TF.Variable => {
    const v = tf.variable(
      init === 'normal' ? tf.mul(tf.truncatedNormal(shape), std) : init === 'zeros' ? tf.zeros(shape) : tf.ones(shape),
    );
    vars.push(v);
    return v;
  };
  const patchW = param([PATCH, PATCH, 3, DIM], 'normal'); // HWIO
  const patchB = param([DIM], 'zeros');
  const cls = param([1, 1, DIM], 'normal');
  const pos = param([1, N, DIM], 'normal');
  const blocks = Array.from({ length: DEPTH }, () => ({
    ln1g: param([DIM], 'ones'),
    ln1b: param([DIM], 'zeros'),
    qkvW: param([DIM, 3 * DIM], 'normal'),
    qBias: param([DIM], 'zeros'),
    vBias: param([DIM], 'zeros'),
    projW: param([DIM, DIM], 'normal'),
    projB: param([DIM], 'zeros'),
    ln2g: param([DIM], 'ones'),
    ln2b: param([DIM], 'zeros'),
    fc1W: param([DIM, 2 * HIDDEN], 'normal'),
    fc1B: param([2 * HIDDEN], 'zeros'),
    fc2W: param([HIDDEN, DIM], 'normal'),
    fc2B: param([DIM], 'zeros'),
  }));
  const fcNormG = param([DIM], 'ones'),
    fcNormB = param([DIM], 'zeros');
  const headW = param([DIM, CLASSES], 'normal'),
    headB = param([CLASSES], 'zeros');

  const kBias = tf.zeros([DIM]); // EVA-02 registers k_bias as a zero buffer: not trained
  const { sin, cos } = ropeTables(g);
  const ropeSin = tf.tensor2d(sin, [P, HEAD_DIM]),
    ropeCos = tf.tensor2d(cos, [P, HEAD_DIM]);
  const consts = [kBias, ropeSin, ropeCos];

  const layerNorm = (x: TF.Tensor, gamma: TF.Tensor, beta: TF.Tensor): TF.Tensor => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS))), gamma), beta);
  };
  const linear = (x2d: TF.Tensor, w: TF.Tensor, b: TF.Tensor): TF.Tensor2D =>
    tf.add(tf.matMul(x2d as TF.Tensor2D, w as TF.Tensor2D), b) as TF.Tensor2D;

  // [B·H, N, hd]: RoPE on the patch tokens (1..N-1), cls token untouched.
  const rope = (t: TF.Tensor3D): TF.Tensor3D => {
    const bh = t.shape[0];
    const clsTok = tf.slice(t, [0, 0, 0], [bh, 1, HEAD_DIM]);
    const patches = tf.slice(t, [0, 1, 0], [bh, P, HEAD_DIM]);
    const pairs = tf.reshape(patches, [bh * P, HEAD_DIM / 2, 2]); // [BH, P, hd] -> [BH·P, hd/2, 2]
    const x0 = tf.slice(pairs, [0, 0, 0], [bh * P, HEAD_DIM / 2, 1]);
    const x1 = tf.slice(pairs, [0, 0, 1], [bh * P, HEAD_DIM / 2, 1]);
    const rot = tf.reshape(tf.concat([tf.neg(x1), x0], 2), [bh, P, HEAD_DIM]); // [-x1, x0, -x3, x2, ...]
    const out = tf.add(tf.mul(patches, ropeCos), tf.mul(rot, ropeSin));
    return tf.concat([clsTok, out], 1) as TF.Tensor3D;
  };

  const heads = (t2d: TF.Tensor): TF.Tensor3D =>
    // [B·N, D] -> [B, N, H, hd] -> [B, H, N, hd] -> [B·H, N, hd]
    tf.reshape(tf.transpose(tf.reshape(t2d, [batch, N, HEADS, HEAD_DIM]), [0, 2, 1, 3]), [batch * HEADS, N, HEAD_DIM]);

  const forward = (images: TF.Tensor4D): TF.Tensor2D => {
    // [B, S, S, 3] -> [B, g, g, D]
    let x: TF.Tensor = tf.add(tf.conv2d(images, patchW as TF.Tensor4D, PATCH, 'valid'), patchB);
    x = tf.reshape(x, [batch, P, DIM]); // [B, g, g, D] -> [B, P, D]
    x = tf.add(tf.concat([tf.tile(cls, [batch, 1, 1]), x], 1), pos); // [B, P, D] -> [B, N, D]
    for (const blk of blocks) {
      const h = tf.reshape(layerNorm(x, blk.ln1g, blk.ln1b), [batch * N, DIM]); // [B, N, D] -> [B·N, D]
      const qkv = linear(h, blk.qkvW, tf.concat([blk.qBias, kBias, blk.vBias])); // [B·N, D] -> [B·N, 3D]
      const [q, k, v] = tf.split(qkv, 3, 1);
      const qh = rope(heads(q)),
        kh = rope(heads(k)),
        vh = heads(v);
      const attn = tf.softmax(tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(HEAD_DIM))); // [B·H, N, N]
      const o = tf.matMul(attn, vh); // [B·H, N, hd]
      const merged = tf.reshape(tf.transpose(tf.reshape(o, [batch, HEADS, N, HEAD_DIM]), [0, 2, 1, 3]), [
        batch * N,
        DIM,
      ]); // -> [B·N, D]
      x = tf.add(x, tf.reshape(linear(merged, blk.projW, blk.projB), [batch, N, DIM]));
      const h2 = tf.reshape(layerNorm(x, blk.ln2g, blk.ln2b), [batch * N, DIM]);
      const [a, gate] = tf.split(linear(h2, blk.fc1W, blk.fc1B), 2, 1); // [B·N, 2H] -> 2 × [B·N, H]
      const m = linear(tf.mul(tf.mul(a, tf.sigmoid(a)), gate), blk.fc2W, blk.fc2B); // SiLU(a)·g -> [B·N, D]
      x = tf.add(x, tf.reshape(m, [batch, N, DIM]));
    }
    const pooled = tf.mean(tf.slice(x, [0, 1, 0], [batch, P, DIM]), 1); // [B, N, D] -> [B, D], cls excluded
    return linear(layerNorm(pooled, fcNormG, fcNormB), headW, headB); // [B, D] -> [B, 10]
  };
  return { vars, consts, forward };
}

export interface TfjsVitSession {
  adapter: string;
  tfjsVersion: string;
  /** Loss of every step so far (same batch each step: it should go down). */
  losses: number[];
  /** One training step; resolves with its wall time (ms) once the GPU is idle. */
  step(): Promise<number>;
  /** Disposes everything and releases the device; returns the tensors leaked per step. */
  close(): number;
}

/**
 * Sets up tfjs's WebGPU backend and the EVA-02-Ti-shaped ViT, ready to run SGD training steps.
 * Call it once per process (tfjs keeps global state).
 */
export async function tfjsVitSession(opts: Omit<TfjsVitOptions, 'steps' | 'warmup'>): Promise<TfjsVitSession> {
  const { batch, size, pollingBackoff = true } = opts;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  Object.assign(globalThis, globals);
  if (pollingBackoff) installPollingBackoff();
  // Keep this object referenced until the device is gone (PLATFORM.md: Dawn crashes otherwise).
  const gpu = create([]);
  let adapterName = '';
  // tfjs's backend factory asks navigator.gpu for its adapter; record which one it got.
  const nav = {
    gpu: {
      requestAdapter: async (o?: GPURequestAdapterOptions) => {
        const a = await gpu.requestAdapter(o);
        if (a) adapterName = `${a.info.vendor} ${a.info.architecture} ${a.info.description || a.info.device}`.trim();
        return a;
      },
      getPreferredCanvasFormat: () => 'rgba8unorm',
      wgslLanguageFeatures: gpu.wgslLanguageFeatures,
    },
  };
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  // The backend registers itself on import, only if navigator.gpu exists by then.
  const tf = await loadTfjs();
  tf.enableProdMode(); // skips tfjs's debug-time argument checks, as a deployment would
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjsVitSession: the tfjs WebGPU backend did not initialise');
  await tf.ready();
  const backend = tf.backend() as unknown as WebGPUBackend;
  const gpuDevice = backend.device;

  const model = buildModel(tf, batch, size);
  const images = tf.randomNormal([batch, size, size, 3]) as TF.Tensor4D;
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % CLASSES),
      'int32',
    ),
    CLASSES,
  );
  const opt = tf.train.sgd(1e-3);
  const losses: number[] = [];
  let steps = 0,
    before = -1;
  const step = async (): Promise<number> => {
    // Tensors alive after the first step, to count leaks per step at close.
    if (steps++ === 1) before = tf.memory().numTensors;
    const t0 = performance.now();
    const loss = opt.minimize(
      () => tf.losses.softmaxCrossEntropy(labels, model.forward(images)) as TF.Scalar,
      true,
      model.vars,
    );
    const value = (await loss!.data())[0]; // flushes every recorded command, the SGD updates included
    loss!.dispose();
    if (!Number.isFinite(value)) throw new Error(`tfjsVitSession: non-finite loss ${value}`);
    losses.push(value);
    await gpuDevice.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  const close = (): number => {
    const leaked = before < 0 ? 0 : (tf.memory().numTensors - before) / (steps - 1);
    opt.dispose();
    tf.dispose([images, labels, ...model.consts]);
    tf.disposeVariables();
    tf.removeBackend('webgpu'); // disposes the backend's buffers
    gpuDevice.destroy();
    // Dropping the polyfill releases the create() object (held by its closure) so Node can exit.
    delete (globalThis as { navigator?: unknown }).navigator;
    return leaked;
  };
  return { adapter: adapterName, tfjsVersion: tf.version_core, losses, step, close };
}

/**
 * Median wall time of one SGD training step of the EVA-02-Ti-shaped ViT on tfjs's WebGPU backend
 * (Dawn): `warmup` untimed steps, then `steps` timed ones (each ends with the GPU idle).
 */
export async function tfjsVitTrainStep(opts: TfjsVitOptions): Promise<TfjsVitResult> {
  const { batch, steps, warmup } = opts;
  const s = await tfjsVitSession(opts);
  const tw = performance.now();
  for (let i = 0; i < warmup; i++) await s.step();
  const warmupMs = performance.now() - tw;
  const stepsMs: number[] = [];
  for (let i = 0; i < steps; i++) stepsMs.push(await s.step());
  const leaked = s.close();
  if (leaked > 0) process.stderr.write(`tfjsVitTrainStep: ${leaked} tensors leaked per step\n`);
  const msPerStep = median(stepsMs);
  return {
    msPerStep,
    imagesPerSec: (batch * 1000) / msPerStep,
    backend: 'tfjs-webgpu',
    adapter: s.adapter,
    stepsMs,
    warmupMs,
    losses: s.losses,
    tfjsVersion: s.tfjsVersion,
  };
}
