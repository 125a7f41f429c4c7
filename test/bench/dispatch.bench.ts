// Dispatch overhead and GPU waits. (1) 1000 small elementwise ops (add on 256 elements) recorded
// into the shared encoder (the device submits every flushEvery dispatches) vs device().flush()
// after each op vs a full round trip (sync) after each op. (2) The polling back-off of
// runtime-node/polling.ts: a long GPU wait (several 1024^3 matmuls) and a short round trip (a
// 4-byte readback) with the back-off on and bypassed.
import { add, device, matmul, randn, tidy } from '../../engine/index.ts';
import { setPollingBackoff } from '../../runtime-node/polling.ts';
import { timeit, fmtNum, type BenchTable } from './util.ts';

const OPS = 1000;
const SYNCED_OPS = 200;
const MATMULS = 4;

export default async function (): Promise<BenchTable[]> {
  const a = randn([256]),
    b = randn([256]);
  const recorded = await timeit(
    () =>
      tidy(() => {
        for (let i = 0; i < OPS; i++) add(a, b);
      }),
    { iters: 7 },
  );
  const flushed = await timeit(
    () =>
      tidy(() => {
        for (let i = 0; i < OPS; i++) {
          add(a, b);
          device().flush();
        }
      }),
    { iters: 7 },
  );
  const synced = await timeit(
    async () => {
      for (let i = 0; i < SYNCED_OPS; i++) {
        tidy(() => {
          add(a, b);
        });
        await device().sync();
      }
    },
    { iters: 5 },
  );
  const dispatch: BenchTable = {
    title: `dispatch: ${OPS} adds of 256-element tensors`,
    columns: ['how', 'median ms per op'],
    rows: [
      ['recorded, one submit per flushEvery dispatches', fmtNum(recorded / OPS, 3)],
      ['device().flush() after each op', fmtNum(flushed / OPS, 3)],
      [`device().sync() after each op (${SYNCED_OPS} ops)`, fmtNum(synced / SYNCED_OPS, 3)],
    ],
  };

  const n = 1024;
  const x = randn([n, n]),
    w = randn([n, n]);
  const long = () =>
    tidy(() => {
      for (let i = 0; i < MATMULS; i++) matmul(x, w);
    });
  const short = async () => {
    const t = add(a, b);
    await t.data();
    t.dispose();
  };
  const rows: (string | number)[][] = [];
  const res: Record<string, { long: number; short: number }> = {};
  // Alternate on/off so drifting machine load hits both alike.
  for (const on of [true, false, true, false]) {
    setPollingBackoff(on);
    const key = on ? 'on' : 'off';
    const l = await timeit(long, { warmup: 1, iters: 3 });
    const s = await timeit(short, { warmup: 5, iters: 50 });
    res[key] = { long: Math.min(res[key]?.long ?? Infinity, l), short: Math.min(res[key]?.short ?? Infinity, s) };
  }
  setPollingBackoff(true);
  const gf = (ms: number) => fmtNum((MATMULS * 2 * n ** 3) / (ms * 1e6));
  rows.push([
    `${MATMULS} matmuls 1024^3, one wait`,
    fmtNum(res.on.long, 1),
    fmtNum(res.off.long, 1),
    `${gf(res.on.long)} vs ${gf(res.off.long)}`,
    fmtNum(res.off.long / res.on.long) + 'x',
  ]);
  rows.push([
    'add on 256 + 4-byte readback',
    fmtNum(res.on.short, 3),
    fmtNum(res.off.short, 3),
    '-',
    fmtNum(res.off.short / res.on.short) + 'x',
  ]);
  for (const t of [a, b, x, w]) t.dispose();
  return [
    dispatch,
    {
      title: 'GPU waits: setImmediate polling back-off on vs bypassed',
      columns: [
        'work',
        'back-off on, median ms',
        'bypassed, median ms',
        'GFLOP/s on vs bypassed',
        'speedup from back-off',
      ],
      rows,
      notes: ['Each figure is the better of two alternating runs of medians (on, off, on, off).'],
    },
  ];
}
