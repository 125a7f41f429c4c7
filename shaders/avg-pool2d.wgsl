// avg_pool2d (PyTorch semantics, ceil_mode false) as one of two separable 1-D passes: the box
// sum and PyTorch's divisor both factor over the axes (the divisor is the product of the
// window's extents along H and W), so a k x k pool costs 2k loads per output instead of k^2
// (k = 31 in the structure loss). This pass pools axis `len` of a [outer, len, inner] view:
//   out[o, j, i] = sum over t in [j*s - p, j*s - p + k) clipped to [0, len) of x[o, t, i] / d_j,
// d_j = the window clipped to [-p, len + p) when count_include_pad (flag = 1), else to [0, len).
struct U { outer: u32, len: u32, inner: u32, olen: u32, k: u32, s: u32, p: i32, flag: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= u.outer * u.olen * u.inner) { return; }
  let i = idx % u.inner;
  let j = i32((idx / u.inner) % u.olen);
  let o = idx / (u.inner * u.olen);
  let st = j * i32(u.s) - u.p;
  let en = min(st + i32(u.k), i32(u.len) + u.p);
  let t0 = max(st, 0);
  let t1 = min(en, i32(u.len));
  let base = o * u.len * u.inner + i;
  var acc = 0.0;
  for (var t = t0; t < t1; t++) { acc += x[base + u32(t) * u.inner]; }
  out[idx] = acc / f32(select(t1 - t0, en - st, u.flag != 0u));
}
