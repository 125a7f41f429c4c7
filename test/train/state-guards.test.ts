// Training-state and weights files that are wrong in ways a loader must not pass over: F16/BF16
// tensors (restored as floats, not integer zeros), corrupt train_state JSON and states missing
// their fields (errors naming the file), and weights holding NaN/Infinity (refused unless asked).
import { describe, it, expect } from 'vitest';
import {
  restoreTrainState,
  trainStateBytes,
  weightsBytes,
  loadWeights,
  nonFiniteTensors,
} from '../../engine/train/checkpoint.ts';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../../engine/io/safetensors.ts';
import { Linear } from '../../engine/nn/layers.ts';
import { AdamW } from '../../engine/optim/index.ts';

/** Rewrites a safetensors file: `edit` changes its tensors and metadata. */
function rewrite(
  bytes: Uint8Array,
  edit: (t: Record<string, SafetensorsInput>, m: Record<string, string>) => void,
): Uint8Array {
  const p = parseSafetensors(bytes);
  const tensors: Record<string, SafetensorsInput> = { ...p.tensors };
  const meta = { ...(p.metadata ?? {}) };
  edit(tensors, meta);
  return serializeSafetensors(tensors, meta);
}

describe('restoreTrainState', () => {
  it('restores F16 and BF16 tensors as their float values (not integer zeros)', async () => {
    const m = new Linear(2, 2);
    const bytes = await trainStateBytes({ model: m, extra: { step: 1 } });
    const w = [0.5, -0.25, 1.5, 0.125],
      b = [0.75, -2];
    const state = rewrite(bytes, (t) => {
      t['model.weight'] = { dtype: 'F16', shape: [2, 2], data: w };
      t['model.bias'] = { dtype: 'BF16', shape: [2], data: b };
    });
    const fresh = new Linear(2, 2);
    restoreTrainState(state, { model: fresh }, 'half.safetensors');
    expect(Array.from(await fresh.weight.data())).toEqual(w);
    expect(Array.from(await fresh.bias!.data())).toEqual(b);
  });

  it('names the file for corrupt train_state JSON and a state without its counters', async () => {
    const m = new Linear(2, 2);
    const bytes = await trainStateBytes({ model: m, extra: { step: 1 } });
    const torn = rewrite(bytes, (_, meta) => {
      meta.train_state = meta.train_state.slice(0, 30);
    });
    expect(() => restoreTrainState(torn, { model: m }, '/runs/a/state.safetensors')).toThrow(
      /^\/runs\/a\/state\.safetensors: the train_state metadata is not valid JSON \(.*\); the file is corrupt/,
    );
    const noExtra = rewrite(bytes, (_, meta) => {
      const j = JSON.parse(meta.train_state);
      delete j.extra;
      meta.train_state = JSON.stringify(j);
    });
    expect(() => restoreTrainState(noExtra, { model: m }, 's.safetensors')).toThrow(
      /^s\.safetensors: the train_state metadata has no 'extra' object/,
    );
    const notObject = rewrite(bytes, (_, meta) => {
      meta.train_state = '42';
    });
    expect(() => restoreTrainState(notObject, { model: m }, 's.safetensors')).toThrow(
      /^s\.safetensors: the train_state metadata is 42, not an object/,
    );
  });

  it('refuses a state with NaN/Infinity weights or moments unless allowNonFinite', async () => {
    const m = new Linear(2, 2);
    const opt = new AdamW(m.parameters(), { lr: 1e-3 });
    const bytes = await trainStateBytes({ model: m, optimizer: opt, extra: { step: 1 } });
    const poisoned = rewrite(bytes, (t) => {
      t['model.weight'] = { dtype: 'F32', shape: [2, 2], data: [NaN, 1, Infinity, 2] };
    });
    expect(() =>
      restoreTrainState(
        poisoned,
        { model: new Linear(2, 2), optimizer: new AdamW(new Linear(2, 2).parameters(), { lr: 1e-3 }) },
        'p.safetensors',
      ),
    ).toThrow(
      /^p\.safetensors: the checkpoint is broken: NaN\/Infinity in 1 tensor\(s\): model\.weight \(2 of 4 values\)/,
    );
    const m2 = new Linear(2, 2);
    restoreTrainState(poisoned, { model: m2 }, 'p.safetensors', { allowNonFinite: true });
    expect(Array.from(await m2.weight.data())).toEqual([NaN, 1, Infinity, 2]);
  });
});

describe('loadWeights', () => {
  it('refuses NaN/Infinity weights naming the tensors, unless allowNonFinite', async () => {
    const m = new Linear(2, 2);
    const bytes = rewrite(await weightsBytes(m), (t) => {
      t.bias = { dtype: 'F32', shape: [2], data: [NaN, NaN] };
    });
    expect(nonFiniteTensors(parseSafetensors(bytes).tensors)).toEqual(['bias (2 of 2 values)']);
    expect(() => loadWeights(new Linear(2, 2), bytes, { source: 'w.safetensors' })).toThrow(
      /^w\.safetensors: the checkpoint is broken: NaN\/Infinity in 1 tensor\(s\): bias/,
    );
    const m2 = new Linear(2, 2);
    loadWeights(m2, bytes, { allowNonFinite: true });
    expect(Array.from(await m2.bias!.data())).toEqual([NaN, NaN]);
  });
});
