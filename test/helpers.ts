// Test helpers: golden fixtures (PyTorch, float64) and on-device finite differences.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import {
  Tensor,
  tensor,
  tidy,
  backward,
  requiresGrad,
  mul,
  sum,
  add,
  noGrad,
  device,
  type DType,
} from '../engine/index.ts';
import type { Dispatch } from '../engine/device.ts';
import { readFixture } from './golden/read-fixture.ts';

export interface Encoded {
  shape: number[];
  dtype: 'f32' | 'i32';
  data: number[];
}
export interface GoldenCase {
  name: string;
  args: Record<string, unknown>;
  inputs: Encoded[];
  outputs: Encoded[];
  cotangents?: (Encoded | null)[];
  grads?: (Encoded | null)[];
}

export function loadGolden(family: string): GoldenCase[] {
  return readFixture<{ cases: GoldenCase[] }>(family).cases;
}

export function fromEncoded(e: Encoded, dtype?: DType): Tensor {
  return tensor(e.data, e.shape, dtype ?? e.dtype);
}

/** Asserts |a - b| <= atol + rtol |b| elementwise, reporting the worst element. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  atol = 1e-5,
  rtol = 1e-4,
): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1,
    worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i],
      b = expected[i];
    if (Number.isNaN(b) && Number.isNaN(a)) continue;
    const err = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = Number.isNaN(err) ? Infinity : err;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`,
    );
  }
}

/**
 * Runs one golden case: `fn` gets the inputs as engine tensors (float inputs require grad) and
 * the case's args, returns one tensor or several. Checks outputs, then the gradients of
 * sum(output * cotangent) against PyTorch's.
 */
export async function checkGolden(
  c: GoldenCase,
  fn: (inputs: Tensor[], args: Record<string, unknown>) => Tensor | Tensor[],
  tol: { atol?: number; rtol?: number; gradAtol?: number; gradRtol?: number } = {},
): Promise<void> {
  const { atol = 1e-5, rtol = 1e-4, gradAtol = atol * 10, gradRtol = rtol * 10 } = tol;
  const inputs = c.inputs.map((e) => {
    const t = fromEncoded(e);
    return e.dtype === 'f32' && c.grads ? requiresGrad(t) : t;
  });
  // Forward and backward in one scope: the graph's intermediates live until backward is done.
  const outs = tidy(() => {
    const r = fn(inputs, c.args);
    const list = Array.isArray(r) ? r : [r];
    if (c.grads && c.cotangents) {
      let total: Tensor | null = null;
      list.forEach((o, i) => {
        const cot = c.cotangents![i];
        if (!cot || !o.requiresGrad) return;
        const term = sum(mul(o, fromEncoded(cot)));
        total = total ? add(total, term) : term;
      });
      if (total) backward(total);
    }
    return list;
  });
  expect(outs.length, `${c.name}: number of outputs`).toBe(c.outputs.length);
  for (let i = 0; i < outs.length; i++) {
    expect([...outs[i].shape], `${c.name}: output ${i} shape`).toEqual(c.outputs[i].shape);
    expectClose(await outs[i].data(), c.outputs[i].data, `${c.name}: output ${i}`, atol, rtol);
  }
  if (c.grads) {
    for (let i = 0; i < inputs.length; i++) {
      const g = c.grads[i];
      if (!g) continue;
      expect(inputs[i].grad, `${c.name}: gradient of input ${i} is missing`).not.toBeNull();
      expectClose(await inputs[i].grad!.data(), g.data, `${c.name}: grad of input ${i}`, gradAtol, gradRtol);
    }
  }
  for (const t of [...outs, ...inputs]) {
    t.grad?.dispose();
    t.dispose();
  }
}

/** A seeded host PRNG (mulberry32) for test inputs. */
export function hostRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, seed: number, low = -1, high = 1): number[] {
  const r = hostRandom(seed);
  return Array.from({ length: n }, () => low + (high - low) * r());
}

/**
 * Finite-difference check of a backward on the device: for a few random directions v, compares
 * <grad L(x), v> with (L(x + h v) - L(x - h v)) / 2h, where L = sum(f(x) * w) for a fixed random
 * w. Directional derivatives keep it to a handful of forward passes whatever the input size.
 */
export async function checkFiniteDifferences(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: { shape: number[]; low?: number; high?: number; data?: number[] }[],
  opts: { h?: number; tol?: number; directions?: number; seed?: number } = {},
): Promise<void> {
  const { h = 1e-2, tol = 2e-2, directions = 2, seed = 7 } = opts;
  const xs0 = inputs.map(
    (s, i) =>
      s.data ??
      randomArray(
        s.shape.reduce((a, b) => a * b, 1),
        seed + i,
        s.low ?? -1,
        s.high ?? 1,
      ),
  );
  const xs = xs0.map((d, i) => requiresGrad(tensor(d, inputs[i].shape)));
  const y0 = tidy(() => fn(...xs.map((x) => x.view(x.shape))));
  const w = tensor(randomArray(y0.size, seed + 100), y0.shape);
  y0.dispose();
  tidy(() => backward(sum(mul(fn(...xs), w))));
  const grads = await Promise.all(xs.map(async (x) => Array.from(await x.grad!.data())));
  const loss = async (shift: number[][], sign: number) => {
    const v = tidy(() =>
      noGrad(() =>
        sum(
          mul(
            fn(
              ...xs0.map((d, i) =>
                tensor(
                  d.map((x, j) => x + sign * h * shift[i][j]),
                  inputs[i].shape,
                ),
              ),
            ),
            w,
          ),
        ),
      ),
    );
    const r = await v.item();
    v.dispose();
    return r;
  };
  for (let k = 0; k < directions; k++) {
    const dir = xs0.map((d, i) => randomArray(d.length, seed * 31 + k * 7 + i));
    const analytic = grads.reduce((acc, g, i) => acc + g.reduce((a, gv, j) => a + gv * dir[i][j], 0), 0);
    const numeric = ((await loss(dir, 1)) - (await loss(dir, -1))) / (2 * h);
    const scale = Math.max(1, Math.abs(numeric), Math.abs(analytic));
    expect(
      Math.abs(analytic - numeric) / scale,
      `finite differences, direction ${k}: analytic ${analytic} vs numeric ${numeric}`,
    ).toBeLessThan(tol);
  }
  for (const x of xs) {
    x.grad?.dispose();
    x.dispose();
  }
  w.dispose();
}

/** Runs a TypeScript script (a recipe) in a child Node process with tsx; resolves with its exit code and output. */
export function runScript(
  script: string,
  args: readonly string[],
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Every file under `dir` (recursively) whose name ends with `suffix`. */
export function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p, suffix) : p.endsWith(suffix) ? [p] : [];
  });
}

/** Runs fn, returning what it printed with console.log (each call one line). */
export async function captured<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    lines.push(a.map(String).join(' '));
  });
  try {
    return { result: await fn(), lines };
  } finally {
    spy.mockRestore();
  }
}

/** Runs fn with every dispatch recorded (each still runs); returns fn's result and the dispatches. */
export async function withDispatches<T>(fn: () => T | Promise<T>): Promise<{ result: T; dispatches: Dispatch[] }> {
  const dev = device();
  const dispatches: Dispatch[] = [];
  const original = dev.dispatch;
  dev.dispatch = function (d: Dispatch) {
    dispatches.push(d);
    original.call(dev, d);
  };
  try {
    return { result: await fn(), dispatches };
  } finally {
    dev.dispatch = original;
  }
}
