// A static server on 127.0.0.1 for the in-browser page (WebGPU needs a secure context, and
// http://127.0.0.1 is one). Serves dist/browser plus read-only extra roots (checkpoints, samples),
// and /checkpoints.json: the .safetensors files under the extra roots (training-state files,
// named state.safetensors by the recipes, and feature caches under cache/ left out), which the
// page offers to load.
// Usage: npx tsx runtime-browser/serve.ts [--port 8080] [--no-build]
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBrowser } from './build.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.safetensors': 'application/octet-stream', '.css': 'text/css',
};

/** Serves `roots` (first match wins) on 127.0.0.1:port (0 = any free port). */
export function serve(roots: string[], port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    if (path === '/checkpoints.json') {
      res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' });
      res.end(JSON.stringify(roots.slice(1).flatMap((r) => findCheckpoints(r).map((f) => ({ url: '/' + relative(r, f).split('\\').join('/'), bytes: statSync(f).size })))));
      return;
    }
    for (const root of roots) {
      let file = resolve(join(root, path));
      if (!file.startsWith(resolve(root))) break;
      if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
      if (existsSync(file) && statSync(file).isFile()) {
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, 'cache-control': 'no-store' });
        createReadStream(file).pipe(res);
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`not found: ${path}`);
  });
  return new Promise((ok) => server.listen(port, '127.0.0.1', () => {
    const a = server.address();
    ok({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : port}/` });
  }));
}

/** .safetensors files under `dir` (4 levels deep at most), except training states. */
function findCheckpoints(dir: string, depth = 0): string[] {
  if (depth > 4 || !existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    // cache/: stage 4's cached backbone features (safetensors, but not checkpoints).
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'cache' && !e.name.startsWith('.')) return findCheckpoints(p, depth + 1);
    return e.isFile() && e.name.endsWith('.safetensors') && e.name !== 'state.safetensors' ? [p] : [];
  }).sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const port = Number(args[args.indexOf('--port') + 1]) || 8080;
  const out = args.includes('--no-build') ? join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist', 'browser') : await buildBrowser();
  const { url } = await serve([out, 'out', 'runs'], args.includes('--port') ? port : 8080);
  console.log(`serving the in-browser demo at ${url} (Ctrl-C to stop)`);
}
