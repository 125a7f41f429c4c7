// The in-browser page: acquires WebGPU, runs the self-check, and reports device and timings.
// Everything it computes goes through the same engine and shaders as Node.
import { initBrowser } from '../index.ts';
import { selfCheck } from './selfcheck.ts';

interface PageState { status: 'starting' | 'ready' | 'error'; error?: string; featureLevel?: string; adapter?: string; selfCheck?: number[]; timings: Record<string, number> }
const state: PageState = { status: 'starting', timings: {} };
(globalThis as unknown as { __page: PageState }).__page = state;

const $ = (id: string) => document.getElementById(id)!;

function timing(name: string, ms: number): void {
  state.timings[name] = ms;
  const row = document.createElement('tr');
  row.innerHTML = `<td>${name}</td><td>${ms.toFixed(1)} ms</td>`;
  $('timings').appendChild(row);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const t0 = performance.now();
  const { device, featureLevel, adapterName } = await initBrowser({ featureLevel: params.get('featureLevel') === 'compatibility' ? 'compatibility' : 'core' });
  timing('acquire device', performance.now() - t0);
  state.featureLevel = featureLevel;
  state.adapter = adapterName;
  $('device').textContent = `${adapterName} — ${featureLevel} feature level${device.hasF16 ? ', shader-f16' : ''}`;
  const t1 = performance.now();
  state.selfCheck = await selfCheck();
  timing('self-check (MLP + softmax)', performance.now() - t1);
  $('selfcheck').textContent = `ok: ${state.selfCheck.length} outputs, first row ${state.selfCheck.slice(0, 3).map((v) => v.toFixed(4)).join(', ')}…`;
  state.status = 'ready';
  $('status').textContent = 'ready';
}

main().catch((e: unknown) => {
  state.status = 'error';
  state.error = e instanceof Error ? e.message : String(e);
  const s = $('status');
  s.className = 'error';
  s.textContent = state.error;
});
