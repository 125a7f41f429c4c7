// The LLM report labeller (runtime-node/llm-labels.ts) against a real HTTP server on 127.0.0.1
// started here (node:http): a good answer, malformed answers, a 500 then success, a timeout, a
// 4xx that is not retried, and a port where nothing listens.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LlmLabeller, LLM_SYSTEM_PROMPT, chatCompletionsUrl, parseLlmAnswer } from '../../runtime-node/llm-labels.ts';

type Handler = (body: Record<string, unknown>, res: ServerResponse, n: number) => void;

/** A chat-completions server whose answer is chosen per test; it records the requests. */
class FakeServer {
  server: Server;
  handler: Handler = () => {};
  requests: { url: string; body: Record<string, unknown> }[] = [];
  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let data = '';
      req.on('data', (c) => {
        data += c;
      });
      req.on('end', () => {
        const body = JSON.parse(data) as Record<string, unknown>;
        this.requests.push({ url: req.url ?? '', body });
        this.handler(body, res, this.requests.length);
      });
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  reset(h: Handler): void {
    this.handler = h;
    this.requests = [];
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const reply = (res: ServerResponse, content: string, status = 200) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    }),
  );
};

describe('LLM report labeller against a local HTTP server', () => {
  const fake = new FakeServer();
  let base = '';
  beforeAll(async () => {
    base = await fake.start();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('a good answer: the request carries the fixed prompt, the report and the model', async () => {
    fake.reset((_b, res) => reply(res, '```json\n{"label": 1, "evidence": "A 5 mm polyp was removed"}\n```'));
    const llm = new LlmLabeller({ url: base, model: 'tiny-model', retries: 0 });
    const d = await llm.label('Indication: screening. A 5 mm polyp was removed.');
    expect(d).toEqual({ label: 1, evidence: 'A 5 mm polyp was removed', guess: 1 });
    expect(fake.requests.length).toBe(1);
    const { url, body } = fake.requests[0];
    expect(url).toBe('/v1/chat/completions');
    expect(body.model).toBe('tiny-model');
    expect(body.temperature).toBe(0);
    const messages = body.messages as { role: string; content: string }[];
    expect(messages[0]).toEqual({ role: 'system', content: LLM_SYSTEM_PROMPT });
    expect(messages[1].content).toContain('A 5 mm polyp was removed.');
    expect(llm.name).toBe('llm:tiny-model');
  });

  it('"uncertain" and 0 answers', async () => {
    const llm = new LlmLabeller({ url: `${base}/v1`, model: 'm', retries: 0 });
    fake.reset((_b, res) => reply(res, '{"label": "uncertain", "evidence": "possible polyp"}'));
    expect(await llm.label('Possible polyp.')).toEqual({ label: 'uncertain', evidence: 'possible polyp', guess: 1 });
    fake.reset((_b, res) => reply(res, 'Answer: {"label": 0, "evidence": "未见息肉"}'));
    expect(await llm.label('未见息肉。')).toEqual({ label: 0, evidence: '未见息肉', guess: 0 });
  });

  it('malformed JSON: retried, then an error naming the URL and the problem', async () => {
    fake.reset((_b, res) => reply(res, 'I think there is a polyp.'));
    const llm = new LlmLabeller({ url: base, model: 'm', retries: 2, backoffMs: 10 });
    await expect(llm.label('x')).rejects.toThrow(
      new RegExp(
        `LLM endpoint ${base}/v1/chat/completions: no JSON object in the answer .* \\(after 3 attempt\\(s\\)\\)`,
      ),
    );
    expect(fake.requests.length).toBe(3);
    // A bad label value is malformed too; a later good answer wins.
    fake.reset((_b, res, n) =>
      reply(res, n === 1 ? '{"label": "maybe", "evidence": "x"}' : '{"label": 0, "evidence": "No polyps"}'),
    );
    expect((await llm.label('No polyps.')).label).toBe(0);
    expect(fake.requests.length).toBe(2);
  });

  it('HTTP 500 then success: retried with backoff', async () => {
    fake.reset((_b, res, n) => {
      if (n === 1) {
        res.writeHead(500);
        res.end('model is loading');
        return;
      }
      reply(res, '{"label": 1, "evidence": "polyp"}');
    });
    const llm = new LlmLabeller({ url: base, model: 'm', retries: 3, backoffMs: 50 });
    const t0 = Date.now();
    expect((await llm.label('A polyp.')).label).toBe(1);
    expect(fake.requests.length).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  });

  it('HTTP 400 is not retried: the error carries the status and the body', async () => {
    fake.reset((_b, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":"model \\"m\\" not found"}');
    });
    const llm = new LlmLabeller({ url: base, model: 'm', retries: 3, backoffMs: 10 });
    await expect(llm.label('x')).rejects.toThrow(
      /LLM endpoint http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: HTTP 400 Bad Request: .*not found/,
    );
    expect(fake.requests.length).toBe(1);
  });

  it('timeout: a server that never answers', async () => {
    fake.reset(() => {
      /* never answers */
    });
    const llm = new LlmLabeller({ url: base, model: 'm', timeoutMs: 150, retries: 1, backoffMs: 10 });
    const t0 = Date.now();
    await expect(llm.label('x')).rejects.toThrow(/LLM endpoint .*: timed out after 150 ms \(after 2 attempt\(s\)\)/);
    expect(fake.requests.length).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    fake.server.closeAllConnections();
  });
});

describe('LLM labeller without a server', () => {
  it('an unreachable port: a clear error naming the URL', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const llm = new LlmLabeller({ url: `http://127.0.0.1:${port}`, model: 'm', retries: 1, backoffMs: 10 });
    await expect(llm.label('x')).rejects.toThrow(
      new RegExp(
        `LLM endpoint http://127\\.0\\.0\\.1:${port}/v1/chat/completions is unreachable after 2 ` +
          `attempt\\(s\\): ECONNREFUSED.*Check --llm-url`,
      ),
    );
  });

  it('URLs and answers', () => {
    expect(chatCompletionsUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080/v1/chat/completions');
    expect(chatCompletionsUrl('http://h:11434/v1/')).toBe('http://h:11434/v1/chat/completions');
    expect(chatCompletionsUrl('https://h/api/v1/chat/completions')).toBe('https://h/api/v1/chat/completions');
    expect(() => chatCompletionsUrl('localhost:8080')).toThrow(/must be http:\/\/ or https:\/\//);
    expect(() => chatCompletionsUrl('not a url')).toThrow(/--llm-url "not a url" is not a URL/);
    expect(() => new LlmLabeller({ url: 'http://h', model: '' })).toThrow(/--llm-model/);
    expect(parseLlmAnswer('{"label":"1","evidence":" x "}')).toEqual({ label: 1, evidence: 'x', guess: 1 });
    expect(() => parseLlmAnswer('{"label":1}')).toThrow(/"evidence" is undefined, not a string/);
    expect(() => parseLlmAnswer('[1]')).toThrow(/no JSON object|not a JSON object/);
    expect(() => parseLlmAnswer('{"label":1,}')).toThrow(/not valid JSON/);
  });
});
