// One pass of a separable Gaussian blur over [B, C, H, W] (dir 0: along x, 1: along y), with a
// per-sample sigma and radius (`prm` rows: [sigma, radius]; radius 0 copies). Borders reflect
// (reflect-101, as OpenCV's default that albumentations uses).
struct U { b: u32, c: u32, h: u32, w: u32, dir: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn reflect101(i: i32, n: i32) -> i32 {
  if (n == 1) { return 0; }
  var j = i;
  if (j < 0) { j = -j; }
  let period = 2 * (n - 1);
  j = j % period;
  return select(j, period - j, j >= n);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.b * u.c * u.h * u.w) { return; }
  let x = i32(i % u.w);
  let y = i32((i / u.w) % u.h);
  let plane = i / (u.w * u.h);
  let b = plane / u.c;
  let sigma = prm[2u * b];
  let r = i32(prm[2u * b + 1u]);
  if (r == 0) { out[i] = src[i]; return; }
  var acc = 0.0;
  var norm = 0.0;
  for (var k = -r; k <= r; k++) {
    let wgt = exp(-f32(k * k) / (2.0 * sigma * sigma));
    var xx = x;
    var yy = y;
    if (u.dir == 0u) { xx = reflect101(x + k, i32(u.w)); } else { yy = reflect101(y + k, i32(u.h)); }
    acc += wgt * src[(plane * u.h + u32(yy)) * u.w + u32(xx)];
    norm += wgt;
  }
  out[i] = acc / norm;
}
