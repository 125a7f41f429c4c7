// The gradient of a narrow (a slice along one dimension, step 1) in one pass: the input seen as
// [rows, cols] where a row spans the narrowed dimension and everything after it, so the slice is
// the column window [lo, hi) of every row, and dy is [rows, hi - lo]. dx takes dy inside the
// window and 0 outside, instead of filling zeros and then writing the window (two passes over
// the window). One division per invocation; with {{T}} a vec4, cols, lo and hi count vec4s.
struct U { n: u32, cols: u32, lo: u32, hi: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> dx: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let r = i / u.cols;
  let c = i - r * u.cols;
  if (c >= u.lo && c < u.hi) {
    dx[i] = dy[r * (u.hi - u.lo) + c - u.lo];
  } else {
    dx[i] = {{T}}();
  }
}
