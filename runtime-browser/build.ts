// Bundles the in-browser page with esbuild, next to index.html and the sample images. The
// `virtual:shaders` module is generated here from ../shaders/*.wgsl, so the browser runs exactly
// the WGSL Node runs (no second copy exists). The page only runs models forward, so the kernels of
// training alone (backward passes, optimizers, augmentation, losses: TRAINING_ONLY) are left out,
// 58 of the 130 KB of WGSL; were one ever needed, the engine's error names it ("no shader named
// 'x.wgsl' was given to the engine"). The source map is written only when asked (--sourcemap): it
// is twice the bundle's size and a user of the page has no use for it; a stale one from an earlier
// build is removed. Each text file (the bundle, its map, index.html, samples/index.json) gets a
// gzip sibling (app.js.gz, ...) written once here at level 9, which the demo server (serve.ts,
// sirv with `gzip`) sends to a browser that accepts gzip, so no request compresses anything.
// Usage: npx tsx runtime-browser/build.ts [--out dist/browser] [--sourcemap]
import { build, type Plugin } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { loadShaders } from '../runtime-node/index.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Shader names of training alone: the page never dispatches them. */
export const TRAINING_ONLY = /backward|^optim-|^augment-|^cross-entropy/;

/** Every shader the page may dispatch, by name. */
function inferenceShaders(): Record<string, string> {
  return Object.fromEntries(Object.entries(loadShaders()).filter(([name]) => !TRAINING_ONLY.test(name)));
}

const shaderPlugin: Plugin = {
  name: 'virtual-shaders',
  setup(b) {
    b.onResolve({ filter: /^virtual:shaders$/ }, () => ({ path: 'shaders', namespace: 'virtual-shaders' }));
    b.onLoad({ filter: /.*/, namespace: 'virtual-shaders' }, () => ({
      contents: `export default ${JSON.stringify(inferenceShaders())};`,
      loader: 'js',
      watchDirs: [join(HERE, '..', 'shaders')],
    }));
  },
};

export async function buildBrowser(
  outDir = join(HERE, '..', 'dist', 'browser'),
  opts: { sourcemap?: boolean } = {},
): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  if (!opts.sourcemap) for (const f of ['app.js.map', 'app.js.map.gz']) rmSync(join(outDir, f), { force: true });
  await build({
    entryPoints: [join(HERE, 'page', 'main.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    outfile: join(outDir, 'app.js'),
    sourcemap: !!opts.sourcemap,
    plugins: [shaderPlugin],
    logLevel: 'warning',
  });
  copyFileSync(join(HERE, 'page', 'index.html'), join(outDir, 'index.html'));
  // The sample images listed in samples/index.json (written by make-demo-assets.ts).
  const samples = join(HERE, 'page', 'samples'),
    index = join(samples, 'index.json');
  if (existsSync(index)) {
    mkdirSync(join(outDir, 'samples'), { recursive: true });
    copyFileSync(index, join(outDir, 'samples', 'index.json'));
    for (const { file } of JSON.parse(readFileSync(index, 'utf8')) as { file: string }[])
      copyFileSync(join(samples, file), join(outDir, 'samples', file));
  }
  const text = ['app.js', 'index.html', join('samples', 'index.json'), ...(opts.sourcemap ? ['app.js.map'] : [])];
  for (const f of text) {
    const path = join(outDir, f);
    if (existsSync(path)) writeFileSync(path + '.gz', gzipSync(readFileSync(path), { level: 9 }));
    else rmSync(path + '.gz', { force: true });
  }
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--out');
  const out = await buildBrowser(i > 0 ? process.argv[i + 1] : undefined, {
    sourcemap: process.argv.includes('--sourcemap'),
  });
  console.log(`built ${out}`);
}
