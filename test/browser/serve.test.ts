// The demo server (runtime-browser/serve.ts, files through sirv): a malformed URL escape is a client
// error and the server keeps serving; a ".." path segment (plain or %-escaped) never reaches a file
// outside the root; a port in use is an error naming the port and --port; text goes out
// gzip-compressed when accepted (the build's precompressed .gz siblings), every file with an ETag
// (304 when unchanged) and no-cache, looked up per request (a file written or changed after start is
// served as it is now); the bundle has no source map unless asked for (runtime-browser/build.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { request } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { serve } from '../../runtime-browser/serve.ts';

const tmp = mkdtempSync(join(tmpdir(), 'serve-'));
writeFileSync(join(tmp, 'hello.txt'), 'hello');
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  rmSync(tmp, { recursive: true, force: true });
});

/** A raw GET (fetch would refuse or re-encode a malformed path, and decompress by itself). */
function get(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; raw: Buffer; headers: Record<string, unknown> }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        chunks.push(d);
      });
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        ok({ status: res.statusCode ?? 0, body: raw.toString(), raw, headers: res.headers });
      });
    });
    req.on('error', fail);
    req.end();
  });
}

describe('runtime-browser/serve.ts', () => {
  it('answers a malformed URL escape with a client error and keeps serving', async () => {
    const { server, url } = await serve([tmp]);
    servers.push(server);
    for (const bad of ['/%E0%A4%A', '/%', '/a%zz']) {
      const r = await get(url, bad);
      expect(r.status, bad).toBeGreaterThanOrEqual(400);
      expect(r.status, bad).toBeLessThan(500);
    }
    expect(await get(url, '/hello.txt')).toMatchObject({ status: 200, body: 'hello' });
    expect((await get(url, '/missing%20file')).status).toBe(404);
  });

  it('never serves a file outside its roots through ".." segments, plain or escaped', async () => {
    const site = join(tmp, 'site');
    mkdirSync(site, { recursive: true });
    writeFileSync(join(site, 'index.html'), 'home');
    writeFileSync(join(tmp, 'package.json'), 'SECRET'); // beside the root, one level up
    mkdirSync(join(tmp, 'site-private'), { recursive: true }); // a sibling whose name starts with the root's
    writeFileSync(join(tmp, 'site-private', 'key.txt'), 'SECRET');
    const { server, url } = await serve([site]);
    servers.push(server);
    for (const bad of [
      '/../package.json',
      '/%2e%2e/package.json',
      '/..%2fpackage.json',
      '/%2e%2e%2fpackage.json',
      '/a/..%5c..%5cpackage.json',
      '/../site-private/key.txt',
      '/%2E%2E/site-private/key.txt',
    ]) {
      const r = await get(url, bad);
      expect(r.status, bad).toBeGreaterThanOrEqual(400);
      expect(r.status, bad).toBeLessThan(500);
      expect(r.body, bad).not.toContain('SECRET');
    }
    expect((await get(url, '/package.json')).status).toBe(404);
    expect(await get(url, '/')).toMatchObject({ status: 200, body: 'home' });
    expect(await get(url, '/index.html?v=1')).toMatchObject({ status: 200, body: 'home' });
  });

  it('a busy port is an error naming the port and --port', async () => {
    const { server, url } = await serve([tmp]);
    servers.push(server);
    const port = Number(new URL(url).port);
    await expect(serve([tmp], port)).rejects.toThrow(
      new RegExp(
        `^port ${port} on 127\\.0\\.0\\.1 is already in use .*: choose another with --port <n>, or ` +
          `--port 0 for any free port`,
      ),
    );
  });

  it('serves a file as it is now: written after start, or changed (new ETag)', async () => {
    const root = join(tmp, 'live');
    mkdirSync(root, { recursive: true });
    const { server, url } = await serve([join(tmp, 'empty'), root]);
    servers.push(server);
    expect((await get(url, '/run/weights.safetensors')).status).toBe(404);
    mkdirSync(join(root, 'run'), { recursive: true });
    writeFileSync(join(root, 'run', 'weights.safetensors'), 'v1');
    const a = await get(url, '/run/weights.safetensors');
    expect(a).toMatchObject({ status: 200, body: 'v1' });
    expect(a.headers['content-type']).toBe('application/octet-stream');
    expect((await get(url, '/run/weights.safetensors', { 'if-none-match': String(a.headers.etag) })).status).toBe(304);
    writeFileSync(join(root, 'run', 'weights.safetensors'), 'v2 longer');
    const b = await get(url, '/run/weights.safetensors', { 'if-none-match': String(a.headers.etag) });
    expect(b).toMatchObject({ status: 200, body: 'v2 longer' });
    expect(b.headers.etag).not.toBe(a.headers.etag);
  });

  it('gzips text when accepted, revalidates with ETags, and builds no source map unless asked', async () => {
    const out = await buildBrowser(join(tmp, 'dist'));
    expect(existsSync(join(out, 'app.js.map'))).toBe(false);
    // The build writes the compressed bundle once; the server sends that file as it is.
    for (const f of ['app.js', 'index.html'])
      expect(gunzipSync(readFileSync(join(out, f + '.gz'))).equals(readFileSync(join(out, f))), f).toBe(true);
    const { server, url } = await serve([out]);
    servers.push(server);
    const js = readFileSync(join(out, 'app.js'));
    const plain = await get(url, '/app.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.raw.equals(js)).toBe(true);
    const z = await get(url, '/app.js', { 'accept-encoding': 'gzip, deflate' });
    expect(z.headers['content-encoding']).toBe('gzip');
    expect(Number(z.headers['content-length'])).toBe(z.raw.length);
    expect(gunzipSync(z.raw).equals(js)).toBe(true);
    expect(z.raw.equals(readFileSync(join(out, 'app.js.gz')))).toBe(true);
    expect(z.raw.length).toBeLessThan(js.length / 3);
    expect(z.headers['cache-control']).toBe('no-cache');
    expect(String(z.headers.vary).toLowerCase()).toBe('accept-encoding');
    const html = await get(url, '/', { 'accept-encoding': 'gzip' });
    expect([html.headers['content-encoding'], html.headers['content-type']]).toEqual([
      'gzip',
      'text/html;charset=utf-8',
    ]);
    expect(gunzipSync(html.raw).equals(readFileSync(join(out, 'index.html')))).toBe(true);
    expect(
      (await get(url, '/app.js', { 'accept-encoding': 'gzip', 'if-none-match': String(z.headers.etag) })).status,
    ).toBe(304);
    const etag = String(plain.headers.etag);
    expect(plain.headers['cache-control']).toBe('no-cache');
    expect((await get(url, '/app.js', { 'if-none-match': etag })).status).toBe(304);
    expect((await get(url, '/app.js', { 'if-none-match': '"other"' })).status).toBe(200);
    expect((await get(url, '/app.js.map')).status).toBe(404);
    await buildBrowser(join(tmp, 'dist'), { sourcemap: true });
    expect(existsSync(join(out, 'app.js.map'))).toBe(true);
    expect(existsSync(join(out, 'app.js.map.gz'))).toBe(true);
    await buildBrowser(join(tmp, 'dist'));
    expect([existsSync(join(out, 'app.js.map')), existsSync(join(out, 'app.js.map.gz'))]).toEqual([false, false]);
    console.log(JSON.stringify({ bundleBytes: js.length, gzipBytes: z.raw.length }));
  }, 120_000);
});
