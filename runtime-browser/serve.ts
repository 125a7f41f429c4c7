// A static server on 127.0.0.1 for the in-browser page (WebGPU needs a secure context, and
// http://127.0.0.1 is one). Serves dist/browser plus read-only extra roots (checkpoints, samples),
// and /checkpoints.json: the servable models among the .safetensors files under the extra roots
// (page/catalog.ts: each described from its header, with its model card when one sits next to
// it; training states, named state.safetensors by the recipes, feature caches under cache/, and
// files that are no model the page can run left out), which the page offers to load.
// `npm run demo` serves runtime-browser/models/ (the small trained checkpoints committed with
// their cards), out/ and runs/.
// Files are served with an ETag (size + modification time) and `cache-control: no-cache`, so a
// browser keeps them and revalidates (304 when unchanged: a reload does not download a checkpoint
// again), and text (the bundle, HTML, JSON) gzip-compressed when the browser accepts it
// (compressed once per file version). The bundle's source map is built and served only with
// --sourcemap.
// Usage: npx tsx runtime-browser/serve.ts [--port 8080] [--no-build] [--sourcemap]
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import {
  createReadStream,
  existsSync,
  readdirSync,
  statSync,
  openSync,
  readSync,
  closeSync,
  readFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { extname, isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBrowser } from './build.ts';
import { readHeader } from './page/infer.ts';
import { describeHeader, checkCard, sortCatalog, type CatalogEntry } from './page/catalog.ts';

export const MODELS_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'models');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.map': 'application/json',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.safetensors': 'application/octet-stream',
  '.css': 'text/css',
};

/**
 * Serves `roots` (first match wins) on 127.0.0.1:port (0 = any free port). A request the handler
 * cannot parse (a malformed %-escape) is answered 400, a path with a ".." segment 403, and any
 * other failure 500: a bad URL never stops the server. A port in use rejects with a message naming it and --port.
 */
export function serve(roots: string[], port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    try {
      handle(roots, req.url ?? '/', res, req.headers);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`server error: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(
        e.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} on 127.0.0.1 is already in use (another server, or this demo already running?): ` +
                `choose another with --port <n>, or --port 0 for any free port`,
            )
          : e,
      ),
    );
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      ok({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : port}/` });
    });
  });
}

const COMPRESSIBLE = new Set(['.html', '.js', '.json', '.map', '.css']);
/** gzip of each text file version (path -> its ETag and bytes), made on first request. */
const gzipped = new Map<string, { etag: string; bytes: Buffer }>();

function handle(roots: string[], url: string, res: ServerResponse, headers: IncomingHttpHeaders): void {
  const refuse = (status: 400 | 403, why: string) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(`${why} in ${JSON.stringify(url.slice(0, 200))}`);
  };
  // The raw path, decoded here (not through new URL, which would fold "/../" away silently): a
  // ".." segment, before or after decoding, is refused rather than resolved.
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.split(/[?#]/)[0]);
  } catch {
    return refuse(400, 'bad request: malformed URL escape');
  }
  if (!decoded.startsWith('/') || decoded.includes('\0')) return refuse(400, 'bad request: not an absolute path');
  if (decoded.split(/[/\\]/).includes('..')) return refuse(403, 'forbidden: ".." leaves the served folders');
  const path = normalize(decoded);
  if (path === '/checkpoints.json') {
    res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' });
    res.end(JSON.stringify(catalog(roots.slice(1))));
    return;
  }
  for (const root of roots) {
    let file = resolve(join(root, path));
    const rel = relative(resolve(root), file);
    if (rel.startsWith('..') || isAbsolute(rel)) continue; // defence in depth: never outside the root
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (existsSync(file) && statSync(file).isFile()) {
      const st = statSync(file),
        ext = extname(file),
        etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      const head = {
        'content-type': TYPES[ext] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
        etag,
        vary: 'accept-encoding',
      };
      if (headers['if-none-match'] === etag) {
        res.writeHead(304, head);
        res.end();
        return;
      }
      if (COMPRESSIBLE.has(ext) && /\bgzip\b/.test(String(headers['accept-encoding'] ?? ''))) {
        let z = gzipped.get(file);
        if (z?.etag !== etag) gzipped.set(file, (z = { etag, bytes: gzipSync(readFileSync(file), { level: 9 }) }));
        res.writeHead(200, { ...head, 'content-encoding': 'gzip', 'content-length': z.bytes.length });
        res.end(z.bytes);
        return;
      }
      res.writeHead(200, { ...head, 'content-length': st.size });
      createReadStream(file).pipe(res);
      return;
    }
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end(`not found: ${path}`);
}

/** The servable checkpoints under `roots` (a URL served from two roots is listed once, as the first serves it). */
export function catalog(roots: string[]): CatalogEntry[] {
  const seen = new Set<string>(),
    out: CatalogEntry[] = [];
  for (const r of roots) {
    for (const f of findCheckpoints(r)) {
      const url = '/' + relative(r, f).split('\\').join('/');
      if (seen.has(url)) continue;
      seen.add(url);
      const d = describeHeader(headerOf(f));
      if ('skip' in d) continue;
      const bytes = statSync(f).size,
        entry: CatalogEntry = { url, bytes, ...d };
      const cardPath = f.replace(/\.safetensors$/, '.card.json');
      if (existsSync(cardPath)) {
        try {
          const card = checkCard(JSON.parse(readFileSync(cardPath, 'utf8')), bytes);
          const sha = createHash('sha256').update(readFileSync(f)).digest('hex');
          if (sha !== card.sha256) throw new Error(`"sha256" is ${card.sha256}, the checkpoint's is ${sha}`);
          entry.card = card;
        } catch (e) {
          entry.cardError = `${relative(r, cardPath)}: ${e instanceof Error ? e.message : String(e)}`;
        }
      }
      out.push(entry);
    }
  }
  return sortCatalog(out);
}

/** The safetensors header of a file (metadata, names and shapes), reading only the header's bytes. */
function headerOf(file: string): ReturnType<typeof readHeader> {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) < 8) return null;
    const n = Number(len.readBigUInt64LE(0));
    if (n > 100 << 20 || n > statSync(file).size - 8) return null;
    const bytes = Buffer.alloc(8 + n);
    readSync(fd, bytes, 0, 8 + n, 0);
    return readHeader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  } finally {
    closeSync(fd);
  }
}

/** .safetensors files under `dir` (4 levels deep at most), except training states. */
function findCheckpoints(dir: string, depth = 0): string[] {
  if (depth > 4 || !existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = join(dir, e.name);
      // cache/: stage 4's cached backbone features (safetensors, but not checkpoints).
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'cache' && !e.name.startsWith('.'))
        return findCheckpoints(p, depth + 1);
      return e.isFile() && e.name.endsWith('.safetensors') && e.name !== 'state.safetensors' ? [p] : [];
    })
    .sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const raw = args.includes('--port') ? args[args.indexOf('--port') + 1] : '8080';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(
      `runtime-browser/serve.ts: --port ${JSON.stringify(raw ?? '')} is not a port number ` +
        `(0..65535; 0 = any free port)`,
    );
    process.exit(1);
  }
  const out = args.includes('--no-build')
    ? join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist', 'browser')
    : await buildBrowser(undefined, { sourcemap: args.includes('--sourcemap') });
  try {
    const { url } = await serve([out, MODELS_DIR, 'out', 'runs'], port);
    console.log(`serving the in-browser demo at ${url} (Ctrl-C to stop)`);
  } catch (e) {
    console.error(`runtime-browser/serve.ts: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
