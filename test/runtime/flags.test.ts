import { describe, expect, it, vi } from 'vitest';
import { defineFlags, FlagError } from '../../runtime-node/flags.ts';

const F = defineFlags('x.ts', 'A test script.', {
  steps: { type: 'int', default: 10, min: 1, help: 'steps' },
  lr: { type: 'number', default: 1e-3, min: 0, exclusiveMin: true, max: 1, help: 'learning rate' },
  data: { type: 'string', default: 'synthetic', choices: ['synthetic', 'real'] as const, help: 'data' },
  out: { type: 'string', help: 'output folder' },
  resume: { type: 'boolean', default: true, help: 'resume' },
  scales: { type: 'numbers', default: [1, 0.5], min: 0.1, help: 'scales' },
  maxMinutes: { type: 'number', min: 0, exclusiveMin: true, help: 'budget' },
});

describe('defineFlags', () => {
  it('gives defaults and parses kebab-case flags into camelCase', () => {
    expect(F.parse([])).toEqual({
      steps: 10,
      lr: 1e-3,
      data: 'synthetic',
      out: undefined,
      resume: true,
      scales: [1, 0.5],
      maxMinutes: undefined,
    });
    const f = F.parse([
      '--steps',
      '5',
      '--max-minutes',
      '2.5',
      '--no-resume',
      '--scales',
      '1,0.75,1.25',
      '--data',
      'real',
      '--out=/tmp/a',
    ])!;
    expect(f).toMatchObject({
      steps: 5,
      maxMinutes: 2.5,
      resume: false,
      scales: [1, 0.75, 1.25],
      data: 'real',
      out: '/tmp/a',
    });
  });
  it('takes the camelCase spelling of a flag and a boolean with a value', () => {
    expect(F.parse(['--maxMinutes', '3', '--maxMinutes=4'])!.maxMinutes).toBe(4);
    expect(() => F.parse(['--no-maxMinutes'])).toThrow(/max-minutes/);
    expect(F.parse(['--resume', 'false', '--steps', '2'])).toMatchObject({ resume: false, steps: 2 });
    expect(F.parse(['--resume=false'])!.resume).toBe(false);
    expect(F.parse(['--no-resume', 'true'])!.resume).toBe(false);
    expect(F.parse(['--no-resume=false'])!.resume).toBe(true);
    expect(() => F.parse(['--resume=maybe'])).toThrow(/--resume "maybe" is not true or false/);
    expect(() => F.parse(['--maxminutes', '3'])).toThrow(FlagError);
  });
  it('rejects values out of range, of the wrong type, unknown flags and positionals, naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--steps', '0'], /--steps "0" is out of range: it must be ≥ 1/],
      [['--steps', '-3'], /--steps "-3" is out of range/],
      [['--steps', '2.5'], /--steps "2.5" is not a whole number/],
      [['--lr', '0'], /--lr "0" is out of range: it must be > 0, ≤ 1/],
      [['--lr', 'abc'], /--lr "abc" is not a number/],
      [['--data', 'kvasir'], /--data "kvasir" is not one of synthetic, real/],
      [['--scales', '1,0'], /--scales "1,0" is out of range/],
      [['--stepz', '3'], /stepz/],
      [['extra'], /extra/],
      [['--steps'], /steps/],
    ];
    for (const [argv, re] of bad) {
      let err: unknown;
      try {
        F.parse(argv);
      } catch (e) {
        err = e;
      }
      expect(err, argv.join(' ')).toBeInstanceOf(FlagError);
      expect((err as Error).message).toMatch(re);
    }
  });
  it('prints every flag with its default and range on --help and returns null', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(F.parse(['--help'])).toBeNull();
    const text = String(log.mock.calls[0][0]);
    log.mockRestore();
    for (const s of [
      '--steps INT',
      '≥ 1',
      '[default 10]',
      '--resume / --no-resume',
      'synthetic|real',
      '--max-minutes NUMBER',
      '> 0',
    ])
      expect(text).toContain(s);
  });
});
