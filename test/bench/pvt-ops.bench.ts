// Polyp-PVT-b2's per-block ops at its training shapes (batch 2, 352 x 352: stage grids 88², 44²,
// 22², 11²; widths 64/128/320/512, MLP hidden 8x/8x/4x/4x), forward + backward, each against what
// it replaced, alternating the two over rounds so drifting machine load hits both alike:
// - layer norm and the attention's softmax: one invocation per row (layer-norm-rows.wgsl,
//   softmax-rows.wgsl) vs a 64-lane workgroup per row;
// - DWConv: depthwiseConvTokens (channels-last, no copies) vs transpose + conv2d + transpose;
// - spatial-reduction attention: kvAttention (heads read and written in place) vs split +
//   permutes + scaledDotProductAttention + permute.
// `npm run bench pvt-ops`. Each figure is the median over rounds of a median of timed runs.
import { tidy, randn, sum, backward, requiresGrad, type Tensor } from '../../engine/index.ts';
import { layerNorm, useLayerNormKernel } from '../../engine/ops/layer-norm.ts';
import { softmax, useSoftmaxKernel } from '../../engine/ops/softmax.ts';
import { depthwiseConvTokens, depthwiseConvTokensReference } from '../../engine/ops/dwconv-tokens.ts';
import { kvAttention, kvAttentionReference } from '../../engine/ops/attention-kv.ts';
import { timeit, median, fmtNum, machine, type BenchTable } from './util.ts';
import { envInt } from './models.ts';

const B = 2;
const STAGES = [
  { hw: 88, c: 64, hidden: 512, heads: 1, sr: 8 },
  { hw: 44, c: 128, hidden: 1024, heads: 2, sr: 4 },
  { hw: 22, c: 320, hidden: 1280, heads: 5, sr: 2 },
  { hw: 11, c: 512, hidden: 2048, heads: 8, sr: 1 },
];

interface Case {
  name: string;
  before: () => void;
  after: () => void;
}

/** Forward and backward of fn on fresh leaves of the given shapes (their grads freed with the scope). */
function fwdBwd(shapes: number[][], fn: (xs: Tensor[]) => Tensor): () => void {
  const xs = shapes.map((s) => randn(s).keep());
  return () =>
    tidy(() => {
      const leaves = xs.map((x) => requiresGrad(x.view(x.shape, 'bench')));
      backward(fn(leaves));
    });
}

export default async function bench(): Promise<BenchTable> {
  const rounds = envInt('BENCH_PVT_OPS_ROUNDS', 5);
  const cases: Case[] = [];
  const sumAll = (y: Tensor) => sum(y);
  for (const s of STAGES) {
    const n = s.hw * s.hw,
      lk = (s.hw / s.sr) ** 2;
    const ln = fwdBwd([[B * n, s.c], [s.c], [s.c]], ([x, w, b]) => sumAll(layerNorm(x, [s.c], w, b)));
    cases.push({
      name: `layer norm [${B * n}, ${s.c}]`,
      before: () => {
        useLayerNormKernel('workgroup');
        ln();
        useLayerNormKernel(null);
      },
      after: () => {
        useLayerNormKernel('rows');
        ln();
        useLayerNormKernel(null);
      },
    });
    const sm = fwdBwd([[B * s.heads * n, lk]], ([x]) => sumAll(softmax(x, -1)));
    cases.push({
      name: `softmax [${B * s.heads * n}, ${lk}]`,
      before: () => {
        useSoftmaxKernel('workgroup');
        sm();
        useSoftmaxKernel(null);
      },
      after: () => {
        useSoftmaxKernel('rows');
        sm();
        useSoftmaxKernel(null);
      },
    });
    const dwShapes = [[B, n, s.hidden], [s.hidden, 1, 3, 3], [s.hidden]];
    cases.push({
      name: `DWConv 3x3 [${B}, ${s.hw}², ${s.hidden}]`,
      before: fwdBwd(dwShapes, ([x, w, b]) => sumAll(depthwiseConvTokensReference(x, w, b, s.hw, s.hw, 1))),
      after: fwdBwd(dwShapes, ([x, w, b]) => sumAll(depthwiseConvTokens(x, w, b, s.hw, s.hw, 1))),
    });
    const atShapes = [
      [B, n, s.c],
      [B, lk, 2 * s.c],
    ];
    cases.push({
      name: `attention q [${B}, ${n}, ${s.c}], kv [${B}, ${lk}, ${2 * s.c}], ${s.heads} heads`,
      before: fwdBwd(atShapes, ([q, kv]) => sumAll(kvAttentionReference(q, kv, { heads: s.heads }))),
      after: fwdBwd(atShapes, ([q, kv]) => sumAll(kvAttention(q, kv, { heads: s.heads }))),
    });
  }
  const ms = cases.map(() => ({ before: [] as number[], after: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 ? (['after', 'before'] as const) : (['before', 'after'] as const)) {
      for (const [i, c] of cases.entries()) ms[i][which].push(await timeit(c[which], { warmup: 1, iters: 3 }));
    }
  }
  const m = machine();
  return {
    title: 'Polyp-PVT-b2 block ops at training shapes (batch 2, 352²), forward + backward: before vs after',
    columns: ['op', 'before ms', 'after ms', 'speed-up'],
    rows: cases.map((c, i) => {
      const b = median(ms[i].before),
        a = median(ms[i].after);
      return [c.name, fmtNum(b, 1), fmtNum(a, 1), fmtNum(b / a) + 'x'];
    }),
    notes: [
      `Median over ${rounds} alternating rounds of the median of 3 timed runs after a warm-up; wall time ` +
        `including dispatch; ${m.cpu}, ${m.cores} cores, load ${m.load}. "before": the workgroup-per-row ` +
        `layer norm and softmax; the transpose + conv2d(groups = C) + transpose DWConv; the split + permute attention.`,
    ],
  };
}
