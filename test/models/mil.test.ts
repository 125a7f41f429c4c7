// EndoKED-MIL (models/mil.ts) against a float64 PyTorch re-implementation (test/golden/gen_mil.py):
// state_dict keys and shapes of the encoder, ABMIL, gated ABMIL, DSMIL and the student; for bags
// of 3, 5 and 8 frames every head's outputs, its loss and the gradient of that loss with respect
// to every encoder and head parameter (DSMIL's gradient reaches the critical instances through
// index_select); the merged pseudo-labels; the presets and the errors on bad inputs.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Tensor, tensor, tidy, backward, device, type Module } from '../../engine/index.ts';
import {
  MilEncoder,
  AbmilHead,
  DsmilHead,
  InstanceHead,
  EndoKedMil,
  endoKedMil,
  MIL,
  abmilLoss,
  dsmilLoss,
  studentLoss,
  pseudoLabels,
  type MilConfig,
} from '../../models/mil.ts';
import { expectClose } from '../helpers.ts';
import { readFixture } from '../golden/read-fixture.ts';

interface Quantised {
  shape: number[];
  dtype: 'f32' | 'i32';
  scale: number;
  q: number[];
}
interface Encoded {
  shape: number[];
  dtype: 'f32';
  data: number[];
}
type HeadName = 'abmil' | 'gated' | 'dsmil' | 'student';
interface HeadRecord {
  loss: number;
  grads: Record<string, Encoded>;
  feat: Encoded;
  critical?: number[];
  [out: string]: unknown;
}
interface Bag {
  n: number;
  label: number;
  input: Quantised;
  pseudo: Quantised;
  heads: Record<HeadName, HeadRecord>;
  dsmil_loss_logits_ce: number;
}
interface Fixture {
  config: MilConfig;
  lambda: number;
  state_dict: Record<'encoder' | HeadName, Record<string, Quantised>>;
  bags: Bag[];
  pseudo_labels: {
    scores: Encoded[];
    ranges: [number, number][];
    weights: number[];
    bag_positive: Encoded;
    expected: Encoded;
  };
  num_parameters: Record<'encoder' | HeadName, number>;
}

const fx = readFixture<Fixture>('mil');
const dequant = (e: Quantised) =>
  tensor(
    e.q.map((v) => v * e.scale),
    e.shape,
    e.dtype,
  );
const c = fx.config,
  f = c.channels[c.channels.length - 1];

function build(): Record<'encoder' | HeadName, Module> {
  const mods: Record<'encoder' | HeadName, Module> = {
    encoder: new MilEncoder(c),
    abmil: new AbmilHead(f, c.abmilHidden, c.abmilAttn, false, c.dropout, c.headInit),
    gated: new AbmilHead(f, c.abmilHidden, c.abmilAttn, true, c.dropout, c.headInit),
    dsmil: new DsmilHead(f, c.dsmilHidden, c.dropout, c.headInit),
    student: new InstanceHead(f, c.studentHidden, c.dropout, c.headInit),
  };
  for (const [name, m] of Object.entries(mods)) {
    const state = new Map(Object.entries(fx.state_dict[name as HeadName]).map(([k, e]) => [k, dequant(e)]));
    m.loadStateDict(state);
    for (const t of state.values()) t.dispose();
    m.train();
  }
  return mods;
}

/**
 * |a - b| <= tol max(max |b|, floor) + 10 tol |b| per element. Gradients use floor 1e-2: the bias
 * of a Linear followed by BatchNorm has an exact gradient of 0, which float32 meets only to ~1e-6.
 */
function close(actual: ArrayLike<number>, expected: number[], what: string, tol = 2e-4, floor = 1e-3): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectClose(actual, expected, what, tol * Math.max(scale, floor), tol * 10);
}

describe('EndoKED-MIL structure', () => {
  it("state_dict keys, order and shapes equal PyTorch's (incl. DSMIL's unused top_layer)", () => {
    const mods = build();
    for (const [name, m] of Object.entries(mods)) {
      const sd = m.stateDict();
      expect([...sd.keys()], name).toEqual(Object.keys(fx.state_dict[name as HeadName]));
      for (const [k, t] of sd) expect([...t.shape], `${name}.${k}`).toEqual(fx.state_dict[name as HeadName][k].shape);
      expect(m.numParameters(), name).toBe(fx.num_parameters[name as HeadName]);
      m.dispose();
    }
  });

  it('EndoKedMil: keys under encoder / teacher1 / teacher2 / student; presets build', () => {
    const m = endoKedMil('mu');
    const prefixes = new Set([...m.stateDict().keys()].map((k) => k.split('.')[0]));
    expect([...prefixes]).toEqual(['encoder', 'teacher1', 'teacher2', 'student']);
    expect(m.encoder.outDim).toBe(64);
    expect([...m.teacher1.stateDict().keys()].some((k) => k.startsWith('attention.'))).toBe(true);
    m.dispose();
    const g = endoKedMil('mu', { gated: true });
    expect([...g.teacher1.stateDict().keys()].filter((k) => k.startsWith('attention_'))).toEqual([
      'attention_V.0.weight',
      'attention_V.0.bias',
      'attention_U.0.weight',
      'attention_U.0.bias',
      'attention_weights.weight',
      'attention_weights.bias',
    ]);
    g.dispose();
    expect(MIL.small.channels.length).toBe(4);
  });
});

describe('EndoKED-MIL against PyTorch: every output and every parameter gradient', () => {
  let baseline = 0;
  let mods: Record<'encoder' | HeadName, Module>;
  beforeAll(() => {
    baseline = device().liveBuffers;
    mods = build();
  });
  afterAll(() => {
    for (const m of Object.values(mods)) m.dispose();
    expect(device().liveBuffers).toBe(baseline);
  });

  for (const [b, bag] of fx.bags.entries()) {
    for (const head of ['abmil', 'gated', 'dsmil', 'student'] as HeadName[]) {
      it(`bag ${b} (${bag.n} frames, label ${bag.label}): ${head}`, async () => {
        const rec = bag.heads[head];
        const enc = mods.encoder,
          m = mods[head];
        const params: [string, Tensor][] = [
          ...enc.namedParameters().map(([k, t]) => [`encoder.${k}`, t] as [string, Tensor]),
          ...m.namedParameters(),
        ];
        for (const [, t] of params) {
          t.grad?.dispose();
          t.grad = null;
        }
        const outs = tidy(() => {
          const feat = (enc as MilEncoder).forward(dequant(bag.input));
          let loss: Tensor, named: Record<string, Tensor>;
          if (head === 'student') {
            const logits = (m as InstanceHead).forward(feat);
            loss = studentLoss(logits, dequant(bag.pseudo), fx.lambda);
            named = { logits };
          } else if (head === 'dsmil') {
            const o = (m as DsmilHead).forward(feat);
            loss = dsmilLoss(o, bag.label);
            named = { ...o, lossLogitsCe: dsmilLoss(o, bag.label, { doubleSoftmax: false }) };
          } else {
            const o = (m as AbmilHead).forward(feat);
            loss = abmilLoss(o, bag.label);
            named = { ...o };
          }
          backward(loss);
          return { ...named, feat, loss } as Record<string, Tensor>;
        });
        close(await outs.feat.data(), rec.feat.data, 'encoder features');
        for (const [k, t] of Object.entries(outs)) {
          if (k === 'feat' || k === 'loss' || k === 'lossLogitsCe') continue;
          const e = rec[k] as Encoded;
          expect([...t.shape], k).toEqual(e.shape);
          close(await t.data(), e.data, `${head}.${k}`);
        }
        expect(await outs.loss.item()).toBeCloseTo(rec.loss, 4);
        if (head === 'dsmil') expect(await outs.lossLogitsCe.item()).toBeCloseTo(bag.dsmil_loss_logits_ce, 4);
        const withGrad = params.filter(([, t]) => t.grad);
        expect(withGrad.map(([k]) => k).sort(), 'parameters with a gradient').toEqual(Object.keys(rec.grads).sort());
        for (const [k, t] of withGrad) close(await t.grad!.data(), rec.grads[k].data, `d${k}`, 5e-4, 1e-2);
        for (const t of Object.values(outs)) t.dispose();
        for (const [, t] of params) {
          t.grad?.dispose();
          t.grad = null;
        }
      });
    }
  }

  it('merged pseudo-labels: min-max normalised, clamped, weighted, 0 in negative bags', async () => {
    const p = fx.pseudo_labels;
    const out = tidy(() =>
      pseudoLabels(
        p.scores.map((s) => tensor(s.data, s.shape)),
        p.ranges.map(([min, max]) => ({ min, max })),
        p.weights,
        tensor(p.bag_positive.data, p.bag_positive.shape),
      ),
    );
    expectClose(await out.data(), p.expected.data, 'pseudo-labels', 1e-6, 1e-5);
    out.dispose();
  });
});

describe('EndoKED-MIL errors', () => {
  it('names the shapes and labels that are wrong', () => {
    const m = new EndoKedMil({ ...MIL.mu, imageSize: 16 });
    expect(() => tidy(() => m.encoder.forward(tensor(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8])))).toThrow(
      /MilEncoder: input \[2, 3, 8, 8\] must be \[n, 3, 16, 16\]/,
    );
    expect(() => tidy(() => studentLoss(tensor([0, 0, 0], [1, 3]), tensor([0], [1]), 0.1))).toThrow(/studentLoss/);
    expect(() => tidy(() => abmilLoss(m.teacher1.forward(tensor(new Float32Array(2 * 64), [2, 64])), 2))).toThrow(
      /bag label 2/,
    );
    m.dispose();
  });
});
