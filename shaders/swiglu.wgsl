// SwiGLU forward, out = silu(a) * g, in one pass over an output seen as [rows, cols]. a and g are
// read at row strides lda / ldg with g offset by og, so one kernel serves both layouts: two
// tensors of the output's shape (lda = ldg = cols, og = 0), or the packed fc1 output [rows, 2 cols]
// bound twice (lda = ldg = 2 cols, og = cols: timm GluMlp's [a | g] halves, no slice copies).
// The row comes from the workgroup id, so no invocation divides (see binary-rows.wgsl). {{T}} is
// vec4<f32> when cols is a multiple of 4 (all counts are then in vec4s), else f32.
alias T = {{T}};
struct U { rows: u32, cols: u32, lda: u32, ldg: u32, og: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> g: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x;
  let r = wid.y + wid.z * nwg.y;
  if (c >= u.cols || r >= u.rows) { return; }
  let x = a[r * u.lda + c];
  out[r * u.cols + c] = x / (1.0 + exp(-x)) * g[r * u.ldg + u.og + c];
}
