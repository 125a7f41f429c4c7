// The demo server (runtime-browser/serve.ts): a malformed URL escape is a 400 and the server keeps
// serving; a port in use is an error naming the port and --port.
import { describe, it, expect, afterAll } from 'vitest';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** A raw GET (fetch would refuse or re-encode a malformed path). */
function get(url: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
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
    expect(await get(url, '/hello.txt')).toEqual({ status: 200, body: 'hello' });
    expect((await get(url, '/missing%20file')).status).toBe(404);
  });

  it('a busy port is an error naming the port and --port', async () => {
    const { server, url } = await serve([tmp]);
    servers.push(server);
    const port = Number(new URL(url).port);
    await expect(serve([tmp], port)).rejects.toThrow(new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is already in use .*: choose another with --port <n>, or --port 0 for any free port`));
  });
});
