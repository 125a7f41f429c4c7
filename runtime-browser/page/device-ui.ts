// The page's Device panel: which adapter runs and why (measured, remembered, requested), whether
// it is a CPU implementation of WebGPU, and the override (the `featureLevel` query parameter,
// which the adapter control sets: auto, core or compatibility).
import { CHOICE_KEY, type BrowserDevice, type FeatureLevel } from '../index.ts';
import { $ } from './render.ts';

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The feature level the page asks for: `?featureLevel=core|compatibility|auto`, default auto. */
export function adapterPreference(search: string): FeatureLevel | 'auto' {
  const v = new URLSearchParams(search).get('featureLevel');
  return v === 'core' || v === 'compatibility' ? v : 'auto';
}

export function wireAdapterControl(pref: FeatureLevel | 'auto'): void {
  const sel = $<HTMLSelectElement>('adapter-choice');
  sel.value = pref;
  sel.onchange = () => {
    const q = new URLSearchParams(location.search);
    if (sel.value === 'auto') q.delete('featureLevel');
    else q.set('featureLevel', sel.value);
    location.search = q.toString();
  };
  $('adapter-remeasure').onclick = () => {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const k = localStorage.key(i);
      if (k?.startsWith(CHOICE_KEY)) localStorage.removeItem(k);
    }
    const q = new URLSearchParams(location.search);
    q.delete('featureLevel');
    location.search = q.toString();
  };
}

/** WebGL's unmasked renderer string ('' when unavailable): which driver the browser's GL runs on. */
function webglRenderer(): string {
  try {
    const gl = document.createElement('canvas').getContext('webgl');
    const ext = gl?.getExtension('WEBGL_debug_renderer_info');
    return (gl && ext ? String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : '') || '';
  } catch {
    return '';
  }
}

/**
 * Shows the adapter and returns whether it is a CPU fallback (null: unknown). An adapter with blank
 * info (Chromium's compatibility adapter over ANGLE discloses itself only with
 * --enable-webgpu-developer-features) is judged by WebGL's renderer, the GL driver ANGLE runs on,
 * when the browser offers WebGL; otherwise the page says it cannot tell.
 */
export function showDevice(d: BrowserDevice, hasF16: boolean): { cpuFallback: boolean | null; renderer: string } {
  const c = d.choice,
    ms = c.measured;
  const renderer = d.infoBlank ? webglRenderer() : '';
  const cpuFallback = !d.infoBlank
    ? d.cpuFallback
    : renderer
      ? /llvmpipe|lavapipe|swiftshader|software/i.test(renderer)
      : null;
  const how =
    c.how === 'measured' || c.how === 'remembered'
      ? `${c.how === 'measured' ? 'measured now' : 'measured on an earlier visit'}: core ` +
        `${ms?.core?.toFixed(1) ?? '?'} ms, compatibility ${ms?.compatibility?.toFixed(1) ?? '?'} ms ` +
        `per test workload; the faster is used`
      : c.how === 'requested'
        ? 'as requested (featureLevel in the address)'
        : c.how === 'same adapter'
          ? 'both feature levels give the same adapter'
          : 'the only adapter offered';
  const name = d.infoBlank
    ? `adapter not disclosed by the browser${renderer ? `; WebGL renders with ${renderer}` : ''}`
    : d.adapterName;
  const badge =
    cpuFallback === null
      ? `<span class="badge warn" id="cpu-unknown">CPU or GPU: not disclosed</span>`
      : cpuFallback
        ? `<span class="badge warn" id="cpu-fallback">CPU fallback</span>`
        : `<span class="badge" id="gpu-badge">GPU</span>`;
  $('device').innerHTML =
    `<b id="adapter-name">${esc(name)}</b> — ${d.featureLevel} feature level${hasF16 ? ', shader-f16' : ''} ${badge}`;
  $('adapter-how').textContent =
    `Chosen: ${how}.` +
    (cpuFallback
      ? ' This adapter runs WebGPU on the CPU (no usable GPU was offered), so models run much slower than on a GPU.'
      : cpuFallback === null
        ? ' The browser does not say which device runs this adapter (Chromium tells with ' +
          '--enable-webgpu-developer-features); it may be a CPU implementation.'
        : '');
  return { cpuFallback, renderer };
}
