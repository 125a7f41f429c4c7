// The demo server (runtime-browser/serve.ts): a malformed URL escape is a 400 and the server keeps
// serving; a ".." path segment (plain or %-escaped) is refused, never resolved outside the root;
// a port in use is an error naming the port and --port; text goes out gzip-compressed
// when accepted, every file with an ETag (304 when unchanged); the bundle has no source map
// unless asked for (runtime-browser/build.ts).
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
  it('answers a malformed URL escape with 400 and keeps serving', async () => {
    const { server, url } = await serve([tmp]);
    servers.push(server);
    for (const bad of ['/%E0%A4%A', '/%', '/a%zz']) {
      const r = await get(url, bad);
      expect(r.status, bad).toBe(400);
      expect(r.body).toMatch(/bad request: malformed URL escape/);
    }
    expect(await get(url, '/hello.txt')).toMatchObject({ status: 200, body: 'hello' });
    expect((await get(url, '/missing%20file')).status).toBe(404);
  });

  it('refuses ".." segments, plain or escaped, and never serves a file outside its roots', async () => {
    const site = join(tmp, 'site');
    mkdirSync(site, { recursive: true });
    writeFileSync(join(site, 'index.html'), 'home');
    writeFileSync(join(tmp, 'package.json'), 'SECRET'); // beside the root, one level up
    const { server, url } = await serve([site]);
    servers.push(server);
    for (const bad of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/a/..%5c..%5cpackage.json']) {
      const r = await get(url, bad);
      expect(r.status, bad).toBe(403);
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

  it('gzips text when accepted, revalidates with ETags, and builds no source map unless asked', async () => {
    const out = await buildBrowser(join(tmp, 'dist'));
    expect(existsSync(join(out, 'app.js.map'))).toBe(false);
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
    expect(z.raw.length).toBeLessThan(js.length / 3);
    const etag = String(plain.headers.etag);
    expect(plain.headers['cache-control']).toBe('no-cache');
    expect((await get(url, '/app.js', { 'if-none-match': etag })).status).toBe(304);
    expect((await get(url, '/app.js', { 'if-none-match': '"other"' })).status).toBe(200);
    expect((await get(url, '/app.js.map')).status).toBe(404);
    await buildBrowser(join(tmp, 'dist'), { sourcemap: true });
    expect(existsSync(join(out, 'app.js.map'))).toBe(true);
    console.log(JSON.stringify({ bundleBytes: js.length, gzipBytes: z.raw.length }));
  }, 120_000);
});
