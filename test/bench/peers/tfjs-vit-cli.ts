// Runs the tfjs ViT peer in its own process and prints one JSON line on stdout:
//   npx tsx test/bench/peers/tfjs-vit-cli.ts [--batch 8] [--size 224] [--steps 2] [--warmup 1] [--no-backoff]
// With --serve it follows the step protocol of README.md instead (warm-up, then one step per
// `step` line on stdin), so a bench can alternate it with other engines.
// Prints {"error": "..."} and exits 1 on failure. Everything else (tfjs notices) goes to stderr.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { tfjsVitSession, tfjsVitTrainStep } from './tfjs-vit.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    size: { type: 'string', default: '224' },
    steps: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
    'no-backoff': { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
  },
});
const int = (name: string, v: string, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`tfjs-vit-cli: --${name} must be an integer >= ${min}, got ${v}`);
  return n;
};

// tfjs writes its notices with console.log/warn; keep stdout for the result line only.
const write = process.stdout.write.bind(process.stdout);
console.log = console.info = (...a: unknown[]) => process.stderr.write(a.map(String).join(' ') + '\n');
try {
  const opts = {
    batch: int('batch', values.batch!, 1),
    size: int('size', values.size!, 14),
    steps: int('steps', values.steps!, 1),
    warmup: int('warmup', values.warmup!, 0),
    pollingBackoff: !values['no-backoff'],
  };
  if (values.serve) await serve(opts);
  else {
    const r = await tfjsVitTrainStep(opts);
    write(
      JSON.stringify({
        peer: 'tfjs',
        model: 'eva02-ti',
        batch: opts.batch,
        size: opts.size,
        steps: opts.steps,
        warmup: opts.warmup,
        pollingBackoff: opts.pollingBackoff,
        ...r,
      }) + '\n',
    );
  }
} catch (e) {
  write(JSON.stringify({ error: String((e as Error)?.stack ?? e) }) + '\n');
  process.exitCode = 1;
}

/** The step protocol: warm-up, a ready line, then one timed step per `step` line on stdin. */
async function serve(opts: { batch: number; size: number; warmup: number; pollingBackoff: boolean }) {
  const s = await tfjsVitSession(opts);
  const tw = performance.now();
  for (let i = 0; i < opts.warmup; i++) await s.step();
  const meta = { peer: 'tfjs', model: 'eva02-ti', adapter: s.adapter, tfjsVersion: s.tfjsVersion };
  write(JSON.stringify({ ready: true, ...meta, warmupMs: performance.now() - tw }) + '\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== 'step') break;
    const c0 = process.cpuUsage();
    const ms = await s.step();
    const c = process.cpuUsage(c0);
    write(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000, loss: s.losses.at(-1) }) + '\n');
  }
  write(JSON.stringify({ done: true, leakedPerStep: s.close() }) + '\n');
}
