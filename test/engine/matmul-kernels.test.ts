// Every matmul kernel against the naive reference kernel and a float64 host product, on awkward
// shapes: 1s, sizes that are not multiples of any tile or block, several tiles with remainders in
// every dim, K = 0, batch broadcasting and all four transpose combinations; then PyTorch's matmul
// fixtures (forward and gradients) through each kernel; and offset, strided operands with a
// strided, scaled output (the layouts attention uses on token-major projections).
import { afterEach, describe, expect, it } from 'vitest';
import { device, matmul, tensor, tidy, transpose, zeros, type Tensor } from '../../engine/index.ts';
import {
  chooseMatmulKernel,
  matmulKernel,
  useMatmulKernel,
  MATMUL_KERNELS,
  type MatmulKernelName,
} from '../../engine/ops/matmul-kernels.ts';
import { checkGolden, loadGolden, randomArray } from '../helpers.ts';

interface Case {
  name: string;
  a: number[];
  b: number[];
  transA?: boolean;
  transB?: boolean;
}

// Shapes as stored (a transposed operand is stored [..., K, M] or [..., N, K]).
const CASES: Case[] = [
  { name: '(1,1,1)', a: [1, 1], b: [1, 1] },
  { name: '(7,33,65)', a: [7, 65], b: [65, 33] },
  { name: '(65,7,33)', a: [65, 33], b: [33, 7] },
  { name: '(33,1,129)', a: [33, 129], b: [129, 1] },
  { name: '(1,129,33)', a: [1, 33], b: [33, 129] },
  { name: 'K = 0', a: [3, 0], b: [0, 5] },
  { name: 'tiles with remainders (130,131,37)', a: [130, 37], b: [37, 131] },
  { name: 'batched broadcast [2,1,9,17]x[3,17,35]', a: [2, 1, 9, 17], b: [3, 17, 35] },
  { name: 'batched broadcast, matrix x batch [9,17]x[2,3,17,35]', a: [9, 17], b: [2, 3, 17, 35] },
  { name: 'transA (67,33,19)', a: [19, 67], b: [19, 33], transA: true },
  { name: 'transB (67,33,19)', a: [67, 19], b: [33, 19], transB: true },
  { name: 'transA transB (67,33,19)', a: [19, 67], b: [33, 19], transA: true, transB: true },
  { name: 'batched transA transB [2,1,21,9]x[3,35,21]', a: [2, 1, 21, 9], b: [3, 35, 21], transA: true, transB: true },
  { name: 'batched transB tiles [2,70,20]x[2,66,20]', a: [2, 70, 20], b: [2, 66, 20], transB: true },
];

/** Float64 product with torch.matmul's broadcasting; also the per-element sum of |a||b| (error scale). */
function hostMatmul(c: Case, ad: number[], bd: number[]): { shape: number[]; out: number[]; mag: number[] } {
  const [ra, ca] = c.a.slice(-2),
    [rb, cb] = c.b.slice(-2);
  const [m, k] = c.transA ? [ca, ra] : [ra, ca];
  const n = c.transB ? rb : cb;
  const ba = c.a.slice(0, -2),
    bb = c.b.slice(0, -2);
  const nd = Math.max(ba.length, bb.length);
  const pa = [...Array(nd - ba.length).fill(1), ...ba],
    pb = [...Array(nd - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const nbatch = batch.reduce((p, d) => p * d, 1);
  const out: number[] = [],
    mag: number[] = [];
  for (let bi = 0; bi < nbatch; bi++) {
    let rem = bi,
      oa = 0,
      ob = 0,
      sa = 1,
      sb = 1;
    for (let d = nd - 1; d >= 0; d--) {
      const idx = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
      oa += (pa[d] === 1 ? 0 : idx) * sa;
      sa *= pa[d];
      ob += (pb[d] === 1 ? 0 : idx) * sb;
      sb *= pb[d];
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0,
          g = 0;
        for (let p = 0; p < k; p++) {
          const x = ad[oa * ra * ca + (c.transA ? p * ca + i : i * ca + p)];
          const y = bd[ob * rb * cb + (c.transB ? j * cb + p : p * cb + j)];
          s += x * y;
          g += Math.abs(x * y);
        }
        out.push(s);
        mag.push(g);
      }
    }
  }
  return { shape: [...batch, m, n], out, mag };
}

async function run(
  kernel: MatmulKernelName,
  c: Case,
  a: Tensor,
  b: Tensor,
): Promise<{ shape: number[]; data: Float32Array }> {
  useMatmulKernel(kernel);
  const y = matmul(a, b, { transA: c.transA, transB: c.transB });
  const data = (await y.data()) as Float32Array;
  const shape = [...y.shape];
  y.dispose();
  return { shape, data };
}

afterEach(() => useMatmulKernel(null));

describe('matmul kernels', () => {
  it('the adapter gets register blocking on a CPU driver and shared-memory tiles on a GPU', () => {
    expect(chooseMatmulKernel()).toBe(device().isCpuAdapter ? 'blocked' : 'tiled');
    useMatmulKernel('naive');
    expect(chooseMatmulKernel()).toBe('naive');
    useMatmulKernel(null);
    expect(chooseMatmulKernel()).toBe(device().isCpuAdapter ? 'blocked' : 'tiled');
    expect(() => useMatmulKernel('nope' as MatmulKernelName)).toThrow(/useMatmulKernel: unknown kernel 'nope'/);
  });

  for (const c of CASES) {
    it(`every kernel matches naive and the host product: ${c.name}`, async () => {
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const ad = randomArray(size(c.a), 11),
        bd = randomArray(size(c.b), 12);
      const ref = hostMatmul(c, Array.from(Float32Array.from(ad)), Array.from(Float32Array.from(bd)));
      const a = tensor(ad, c.a),
        b = tensor(bd, c.b);
      const naive = await run('naive', c, a, b);
      expect(naive.shape, 'naive: output shape').toEqual(ref.shape);
      const eps = 2 ** -23;
      const k = c.transA ? c.a.at(-2)! : c.a.at(-1)!;
      // Float32 dot products of length k: error below k * eps * sum|a||b| (sequential sums).
      const t = ref.mag.map((g) => 2 * k * eps * g);
      const check = (got: Float32Array, want: ArrayLike<number>, what: string) => {
        for (let i = 0; i < want.length; i++) {
          if (!(Math.abs(got[i] - want[i]) <= t[i]))
            expect.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]} (tolerance ${t[i]})`);
        }
      };
      expect(naive.data.length).toBe(ref.out.length);
      check(naive.data, ref.out, `${c.name}: naive vs host`);
      for (const kernel of MATMUL_KERNELS) {
        if (kernel === 'naive') continue;
        const got = await run(kernel, c, a, b);
        expect(got.shape, `${kernel}: output shape`).toEqual(ref.shape);
        check(got.data, ref.out, `${c.name}: ${kernel} vs host`);
        check(got.data, naive.data, `${c.name}: ${kernel} vs naive`);
      }
      a.dispose();
      b.dispose();
    });
  }

  it('every kernel reads offset, strided operands and writes a strided, scaled output in place', async () => {
    // Heads of token-major tensors: a [B, M, H*K] read as [B, H, M, K] from element 5 on, b the
    // second half of a packed [B, N, 2*H*K] read transposed as [B, H, K, N]; C written token-major
    // into columns 3.. of a wider [B, M, H*N + 4] buffer from element 3, times alpha. Everything
    // outside the written positions must keep its sentinel.
    const [B, H, M, N, K, alpha] = [2, 3, 37, 19, 9, 0.375];
    const wa = H * K,
      wb = 2 * H * K,
      wc = H * N + 4;
    const ad = randomArray(5 + B * M * wa, 21),
      bd = randomArray(B * N * wb, 22);
    const [af, bf] = [Float32Array.from(ad), Float32Array.from(bd)];
    const want = new Float64Array(B * M * wc).fill(7);
    const tol = new Float64Array(want.length);
    for (let bi = 0; bi < B; bi++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let acc = 0,
              mag = 0;
            for (let k = 0; k < K; k++) {
              const x = af[5 + bi * M * wa + i * wa + h * K + k] * bf[H * K + bi * N * wb + j * wb + h * K + k];
              acc += x;
              mag += Math.abs(x);
            }
            const o = 3 + bi * M * wc + i * wc + h * N + j;
            want[o] = alpha * acc;
            tol[o] = 2 * K * 2 ** -23 * mag;
          }
    const a = tensor(ad, [ad.length]),
      b = tensor(bd, [bd.length]);
    for (const kernel of MATMUL_KERNELS) {
      const out = tensor(
        Array.from({ length: B * M * wc }, () => 7),
        [B, M, wc],
      );
      matmulKernel({
        a,
        b,
        out,
        batch: [B, H],
        m: M,
        n: N,
        k: K,
        bsa: [M * wa, K],
        bsb: [N * wb, K],
        sam: wa,
        sak: 1,
        sbk: 1,
        sbn: wb,
        offa: 5,
        offb: H * K,
        offc: 3,
        bsc: [M * wc, N],
        scm: wc,
        scn: 1,
        alpha,
      });
      const got = await out.data();
      for (let i = 0; i < want.length; i++)
        if (!(Math.abs(got[i] - want[i]) <= tol[i]))
          expect.fail(`${kernel}: element ${i} is ${got[i]}, expected ${want[i]}`);
      out.dispose();
    }
    a.dispose();
    b.dispose();
  });

  it("a batch past the adapter's workgroup limit is an error naming the op", () => {
    const max = device().limits.maxComputeWorkgroupsPerDimension;
    for (const kernel of MATMUL_KERNELS) {
      useMatmulKernel(kernel);
      expect(() => tidy(() => matmul(zeros([max + 1, 1, 2]), zeros([2, 3])))).toThrow(
        /^matmul: batch \d+, m 1, n 3 needs .* workgroups/,
      );
    }
  });

  it('every kernel leaves no live buffers behind', async () => {
    const before = device().liveBuffers;
    const a = tensor(randomArray(7 * 65, 1), [7, 65]),
      b = tensor(randomArray(65 * 33, 2), [65, 33]);
    for (const kernel of MATMUL_KERNELS) await run(kernel, CASES[1], a, b);
    a.dispose();
    b.dispose();
    expect(device().liveBuffers).toBe(before);
  });
});

describe('matmul kernels against PyTorch (forward and gradients)', () => {
  const OPS: Record<string, (x: Tensor[]) => Tensor> = {
    matmul_batched_broadcast: ([a, b]) => matmul(a, b),
    matmul_vec: ([a, b]) => matmul(a, b),
    matmul_transA: ([a, b]) => matmul(a, b, { transA: true }),
    matmul_transB: ([a, b]) => matmul(a, transpose(b, -1, -2)),
    matmul_transA_transB: ([a, b]) => matmul(a, b, { transA: true, transB: true }),
  };
  const cases = loadGolden('core').filter((c) => c.name in OPS);
  it('the core fixtures hold every matmul case', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(Object.keys(OPS).sort());
  });
  for (const kernel of MATMUL_KERNELS) {
    for (const c of cases) {
      it(`${kernel}: ${c.name}`, async () => {
        useMatmulKernel(kernel);
        await checkGolden(c, (xs) => OPS[c.name](xs));
      });
    }
  }
});
