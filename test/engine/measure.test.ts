// Measured kernel choice: with matmul = auto-measure, the first product of a shape class times
// every kernel on the live device and caches the fastest; the next product of that class takes
// the cached winner without measuring again, and every kernel gives the right numbers.
import { describe, it, expect, afterEach } from 'vitest';
import { device, tensor, matmul, setFlag, resetFlags, MATMUL_KERNELS, type Tensor } from '../../engine/index.ts';
import { measureStats, measuredWinners, settleMeasurements } from '../../engine/measure.ts';
import { expectClose } from '../helpers.ts';

afterEach(() => resetFlags());

function reference(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) out[i * n + j] += a[i * k + t] * b[t * n + j];
  return out;
}

describe('auto-measure kernel choice', () => {
  it('times each matmul kernel once per shape class, caches the winner, hits the cache the second time', async () => {
    const [m, k, n] = [33, 47, 29];
    const av = Array.from({ length: m * k }, (_, i) => ((i * 7) % 13) / 13 - 0.5);
    const bv = Array.from({ length: k * n }, (_, i) => ((i * 5) % 11) / 11 - 0.5);
    const a = tensor(av, [m, k]).keep(),
      b = tensor(bv, [k, n]).keep();
    const want = reference(av, bv, m, k, n);
    for (const kernel of MATMUL_KERNELS) {
      setFlag('matmul', kernel); // every candidate is right on its own
      const y = matmul(a, b);
      expectClose(await y.data(), want, kernel, 1e-5, 1e-4);
      y.dispose();
    }

    const dev = device();
    const lines: string[] = [];
    const log = dev as unknown as { log: (l: string) => void };
    const prevLog = log.log;
    log.log = (l: string) => lines.push(l);
    setFlag('matmul', 'auto-measure');
    setFlag('debug', 1);
    const before = { ...measureStats };
    const outs: Tensor[] = [];
    try {
      outs.push(matmul(a, b)); // starts the measurement, computes with the rule's kernel
      await settleMeasurements();
      expect(measureStats.measured).toBe(before.measured + 1);
      expect(measureStats.hits).toBe(before.hits);
      outs.push(matmul(a, b)); // the same shape class: the cached winner
      const row = tensor(av.slice(0, k), [1, k]);
      outs.push(matmul(row, b), row); // m = 1: another class
      await settleMeasurements();
      expect(measureStats.hits).toBe(before.hits + 1);
      expect(measureStats.measured).toBe(before.measured + 2);
      for (const y of outs.slice(0, 2)) expectClose(await y.data(), want, 'auto-measure', 1e-5, 1e-4);
    } finally {
      resetFlags();
      log.log = prevLog;
      for (const y of outs) y.dispose();
      a.dispose();
      b.dispose();
    }
    const key = `${dev.adapterName}|matmul|1x64x32x64`;
    expect(MATMUL_KERNELS).toContain(measuredWinners().get(key));
    const line = lines.find((l) => l.startsWith('[measure] matmul 1x64x32x64: '));
    expect(line).toMatch(
      /^\[measure\] matmul 1x64x32x64: naive \d+\.\d\d ms, blocked \d+\.\d\d ms, tiled \d+\.\d\d ms -> \w+$/,
    );
    expect(line!.endsWith(`-> ${measuredWinners().get(key)}`)).toBe(true);
  });
});
