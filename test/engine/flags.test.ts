// The knob registry: every knob declared once, checked on every write, set from the environment
// (runtime-node) or URL parameters (the page), and read by the engine where it decides.
import { describe, it, expect, afterEach } from 'vitest';
import {
  device,
  knobs,
  setFlag,
  setFlags,
  resetFlags,
  flagsFromEnv,
  flagsFromQuery,
  flagsHelp,
  envName,
  KNOBS,
  chooseMatmulKernel,
  useMatmulKernel,
  attentionTrainingPath,
  exp,
  sum,
  zeros,
} from '../../engine/index.ts';

afterEach(() => resetFlags());

describe('engine knobs', () => {
  it('declares each knob once with a default, type, allowed values and help', () => {
    expect(Object.keys(KNOBS).sort()).toEqual(['attentionTraining', 'debug', 'flushEvery', 'matmul', 'pollingBackoff']);
    expect(knobs.flushEvery).toBe(256);
    const help = flagsHelp().split('\n');
    expect(help).toHaveLength(Object.keys(KNOBS).length);
    expect(help.find((l) => l.startsWith('matmul '))).toMatch(
      /^matmul \(ENGINE_MATMUL\) auto\|naive\|blocked\|tiled\|auto-measure, default auto: /,
    );
    expect(envName('flushEvery')).toBe('ENGINE_FLUSH_EVERY');
    expect(envName('debug')).toBe('DEBUG');
  });

  it('refuses an unknown knob or a bad value, naming it, and sets nothing of a bad batch', () => {
    expect(() => setFlag('flushEvry' as 'flushEvery', 3)).toThrow(/unknown engine knob 'flushEvry' \(known: debug, /);
    expect(() => setFlag('debug', 4)).toThrow(/engine knob 'debug': 4 is not an integer in \[0, 3\]/);
    expect(() => setFlag('debug', '1.5')).toThrow(/engine knob 'debug': "1.5" is not an integer/);
    expect(() => setFlag('matmul', 'fast')).toThrow(
      /engine knob 'matmul': "fast" is not one of auto, naive, blocked, tiled, auto-measure/,
    );
    expect(() => setFlag('pollingBackoff', 'yes')).toThrow(/engine knob 'pollingBackoff': "yes" is not true or false/);
    expect(() => setFlags({ flushEvery: '8', matmul: 'fast' })).toThrow(/'matmul'/);
    expect(knobs.flushEvery).toBe(256); // the good half of a bad batch is not applied
    setFlags({ flushEvery: '8', matmul: 'naive', pollingBackoff: 'false' });
    expect([knobs.flushEvery, knobs.matmul, knobs.pollingBackoff]).toEqual([8, 'naive', false]);
  });

  it('reads DEBUG and ENGINE_* from an environment and engine.* from URL parameters', () => {
    expect(flagsFromEnv({ DEBUG: '2', ENGINE_FLUSH_EVERY: '64', HOME: '/root', PATH: undefined })).toEqual({
      debug: '2',
      flushEvery: '64',
    });
    expect(() => flagsFromEnv({ ENGINE_MATMULL: 'tiled' })).toThrow(/^ENGINE_MATMULL: no engine knob by that name/);
    const q = new URLSearchParams('featureLevel=core&engine.matmul=tiled&engine.attentionTraining=fused');
    expect(flagsFromQuery(q)).toEqual({ matmul: 'tiled', attentionTraining: 'fused' });
    expect(() => setFlags(flagsFromQuery(new URLSearchParams('engine.nope=1')))).toThrow(/unknown engine knob 'nope'/);
  });

  it('the engine reads the knobs where it decides: kernel choices and the flush interval', async () => {
    setFlag('matmul', 'naive');
    expect(chooseMatmulKernel()).toBe('naive');
    useMatmulKernel(null);
    expect(knobs.matmul).toBe('auto');
    setFlag('attentionTraining', 'unfused');
    expect(attentionTrainingPath(1, 1, 4096, 4096)).toBe('unfused');
    setFlag('attentionTraining', 'fused');
    expect(attentionTrainingPath(1, 1, 4, 4)).toBe('fused');

    const dev = device();
    await dev.sync();
    const lines: string[] = [];
    const log = dev as unknown as { log: (l: string) => void };
    const prevLog = log.log;
    log.log = (l: string) => lines.push(l);
    setFlags({ flushEvery: 2, debug: 1 });
    try {
      const t = zeros([64]);
      const outs = [1, 2, 3, 4, 5].map(() => exp(t)); // 1 fill + 5 exp dispatches
      await sum(outs[4]).data();
      for (const o of [t, ...outs]) o.dispose();
    } finally {
      resetFlags();
      log.log = prevLog;
    }
    const flushes = lines.filter((l) => l.startsWith('[flush]'));
    expect(flushes.length).toBeGreaterThanOrEqual(3);
    for (const l of flushes) expect(Number(/: (\d+) dispatches/.exec(l)![1])).toBeLessThanOrEqual(2);
  });
});
