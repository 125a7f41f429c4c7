// SwiGLU backward for the packed layout (out = silu(x[:, :cols]) * x[:, cols:], x [rows, 2 cols]):
// one pass reads both halves of x and dy once and writes both halves of dx, so the backward of
// timm GluMlp's chunk + silu + mul is one kernel with no slice-backward fills or adds. Maths as
// in swiglu-backward.wgsl; layout and {{T}} as in swiglu.wgsl.
alias T = {{T}};
struct U { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> dy: array<T>;
@group(0) @binding(3) var<storage, read_write> dx: array<T>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x;
  let r = wid.y + wid.z * nwg.y;
  if (c >= u.cols || r >= u.rows) { return; }
  let ia = r * 2u * u.cols + c;
  let ig = ia + u.cols;
  let a = x[ia];
  let s = 1.0 / (1.0 + exp(-a));
  let d = dy[r * u.cols + c];
  dx[ia] = d * x[ig] * s * (1.0 + a * (1.0 - s));
  dx[ig] = d * a * s;
}
