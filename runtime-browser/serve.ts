// The demo server on 127.0.0.1 for the in-browser page (WebGPU needs a secure context, and
// http://127.0.0.1 is one). Files come from sirv (lukeed/sirv), one handler per root, tried in
// order (dist/browser first, then read-only extra roots: checkpoints, samples), then a 404. Our
// own handler keeps the one route that is no file, /checkpoints.json: the servable models among
// the .safetensors files under the extra roots (page/catalog.ts: each described from its header,
// with its model card when one sits next to it; training states, named state.safetensors by the
// recipes, feature caches under cache/, and files that are no model the page can run left out),
// which the page offers to load.
// `npm run demo` serves runtime-browser/models/ (the small trained checkpoints committed with
// their cards), out/ and runs/.
// sirv runs in its `dev` mode: it looks each request up on disk rather than listing the roots once
// at start, so a checkpoint a recipe writes into out/ or runs/ while the demo runs is served, and a
// rebuilt bundle is picked up. Every file goes out with an ETag (size + modification time) and
// `cache-control: no-cache`, so a browser keeps it and revalidates (304 when unchanged: a reload
// does not download a checkpoint again). Text is gzip-compressed by the build (build.ts writes
// app.js.gz, index.html.gz, ... beside each file), and sirv sends that sibling to a browser that
// accepts gzip. sirv never serves a path outside its root (a ".." segment, plain or %-escaped,
// resolves outside it and is not found; a malformed %-escape is looked up as written and not
// found). The bundle's source map is built and served only with --sourcemap.
// Usage: npx tsx runtime-browser/serve.ts [--port 8080] [--no-build] [--sourcemap]
import { createServer, type Server } from 'node:http';
import { existsSync, readdirSync, statSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import sirv, { type RequestHandler } from 'sirv';
import { buildBrowser } from './build.ts';
import { readHeader } from './page/infer.ts';
import { describeHeader, checkCard, sortCatalog, type CatalogEntry } from './page/catalog.ts';

export const MODELS_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'models');

/**
 * Serves `roots` (first match wins) on 127.0.0.1:port (0 = any free port). A request no root
 * holds is a 404, and any failure in our handler a 500: a bad URL never stops the server. A port
 * in use rejects with a message naming it and --port.
 */
export function serve(roots: string[], port = 0): Promise<{ server: Server; url: string }> {
  const files: RequestHandler[] = roots.map((r) =>
    sirv(r, {
      dev: true,
      etag: true,
      gzip: true,
      // sirv knows no type for .safetensors and would send an empty content-type.
      setHeaders: (res, pathname) => {
        if (pathname.endsWith('.safetensors')) res.setHeader('content-type', 'application/octet-stream');
      },
    }),
  );
  const server = createServer((req, res) => {
    try {
      const path = (req.url ?? '/').split(/[?#]/)[0];
      if (path === '/checkpoints.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(catalog(roots.slice(1))));
        return;
      }
      const tryRoot = (i: number): void => {
        if (i < files.length) return files[i](req, res, () => tryRoot(i + 1));
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end(`not found: ${path.slice(0, 200)}`);
      };
      tryRoot(0);
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
