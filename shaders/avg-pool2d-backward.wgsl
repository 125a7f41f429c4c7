// avg_pool2d backward, one separable 1-D pass (the transpose of avg-pool2d.wgsl's pass) as a
// gather, deterministic: dx[o, t, i] = sum over the windows j that contain t of dy[o, j, i] / d_j.
// Window j covers [j*s - p, j*s - p + k), so t lies in windows ceil((t + p - k + 1) / s) ..=
// floor((t + p) / s).
struct U { outer: u32, len: u32, inner: u32, olen: u32, k: u32, s: u32, p: i32, flag: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= u.outer * u.len * u.inner) { return; }
  let i = idx % u.inner;
  let t = i32((idx / u.inner) % u.len);
  let o = idx / (u.inner * u.len);
  let a = t + u.p - i32(u.k) + 1;
  let j0 = select(0, (a + i32(u.s) - 1) / i32(u.s), a > 0);
  let j1 = min((t + u.p) / i32(u.s), i32(u.olen) - 1);
  let base = o * u.olen * u.inner + i;
  var acc = 0.0;
  for (var j = j0; j <= j1; j++) {
    let st = j * i32(u.s) - u.p;
    let en = min(st + i32(u.k), i32(u.len) + u.p);
    let d = select(min(en, i32(u.len)) - max(st, 0), en - st, u.flag != 0u);
    acc += dy[base + u32(j) * u.inner] / f32(d);
  }
  dx[idx] = acc;
}
