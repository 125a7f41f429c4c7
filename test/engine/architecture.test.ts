// The engine is pure TypeScript: it receives a GPUDevice and shader text from a runtime and
// never touches the file system, the network, the process or the browser itself.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { filesUnder } from '../helpers.ts';

const ROOT = join(__dirname, '..', '..');
const FORBIDDEN_IMPORTS =
  /from\s+['"](node:|fs|path|os|child_process|url|process|sharp|webgpu)|require\(|import\(\s*['"]node:/;
const FORBIDDEN_GLOBALS = /\b(process\.|navigator\.|fetch\(|window\.|document\.|globalThis\.navigator)/;

const files = (dir: string) => filesUnder(dir, '.ts');

describe('architecture', () => {
  it('engine/ imports no runtime module and touches no runtime global', () => {
    const offenders: string[] = [];
    for (const f of files(join(ROOT, 'engine'))) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const trimmed = line.trim();
          if (trimmed.startsWith('*') || trimmed.startsWith('/*')) return; // comment lines
          const code = line.replace(/\/\/.*$/, '').replace(/\/\*.*?\*\//g, '');
          if (FORBIDDEN_IMPORTS.test(code) || FORBIDDEN_GLOBALS.test(code))
            offenders.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });

  it('only the device layer (engine/device.ts, its pipeline cache pipelines.ts) calls the WebGPU device API', () => {
    const offenders: string[] = [];
    const api = new RegExp(
      String.raw`\.(createBuffer|createComputePipeline|createBindGroup|createShaderModule|` +
        String.raw`createCommandEncoder|queue\.submit|writeBuffer)\(`,
    );
    for (const f of files(join(ROOT, 'engine'))) {
      if (/engine\/(device|pipelines)\.ts$/.test(f)) continue;
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (api.test(line)) offenders.push(`${relative(ROOT, f)}:${i + 1}`);
        });
    }
    expect(offenders).toEqual([]);
  });

  it('only engine/ops/* dispatches kernels', () => {
    const offenders = files(join(ROOT, 'engine'))
      .filter((f) => !relative(ROOT, f).startsWith('engine/ops/') && /\blaunch\(/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    expect(offenders).toEqual([]);
  });

  it('every shader an op names exists, and every shader is used by some op', () => {
    const shaders = new Set(
      readdirSync(join(ROOT, 'shaders'))
        .filter((f) => f.endsWith('.wgsl'))
        .map((f) => f.slice(0, -5)),
    );
    const src = files(join(ROOT, 'engine'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const named = new Set([...src.matchAll(/shader:\s*['"]([a-z0-9-]+)['"]/g)].map((m) => m[1]));
    for (const n of named) expect(shaders.has(n), `shaders/${n}.wgsl is named by an op but missing`).toBe(true);
    const unused = [...shaders].filter(
      (s) => !src.includes(`'${s}'`) && !src.includes(`"${s}"`) && !src.includes(`\`${s}`),
    );
    expect(unused, 'shaders no engine file refers to').toEqual([]);
  });
});
