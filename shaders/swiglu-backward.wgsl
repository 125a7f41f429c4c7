// SwiGLU backward for two separate inputs (out = silu(a) * g, all [rows, cols]): one pass reads
// a, g, dy once and writes both gradients, da = dy * g * silu'(a) and dg = dy * silu(a), with
// silu'(x) = s (1 + x (1 - s)), s = sigmoid(x). The packed layout writes one [rows, 2 cols]
// gradient instead: swiglu-backward-packed.wgsl. Layout and {{T}} as in swiglu.wgsl.
alias T = {{T}};
struct U { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> g: array<T>;
@group(0) @binding(3) var<storage, read> dy: array<T>;
@group(0) @binding(4) var<storage, read_write> da: array<T>;
@group(0) @binding(5) var<storage, read_write> dg: array<T>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x;
  let r = wid.y + wid.z * nwg.y;
  if (c >= u.cols || r >= u.rows) { return; }
  let i = r * u.cols + c;
  let x = a[i];
  let s = 1.0 / (1.0 + exp(-x));
  let d = dy[i];
  da[i] = d * g[i] * s * (1.0 + x * (1.0 - s));
  dg[i] = d * x * s;
}
