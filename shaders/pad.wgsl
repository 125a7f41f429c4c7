// out = pad(src): output coordinate c reads input coordinate c - left on every dim. Outside the
// input, mode 0 (constant) writes `bits` (the value's 32-bit pattern) and mode 1 (replicate)
// clamps to the nearest edge. Negative `left` crops, so the same kernel serves negative pads.
struct U { shape: array<vec4<u32>, 2>, inShape: array<vec4<u32>, 2>, left: array<vec4<i32>, 2>, n: u32, rank: u32, mode: u32, bits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var rem = i;
  var j = 0u;
  var stride = 1u;
  var inside = true;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    let m = i32(u.inShape[d / 4][d % 4]);
    var c = i32(rem % s) - u.left[d / 4][d % 4];
    rem = rem / s;
    if (c < 0 || c >= m) {
      inside = false;
      c = clamp(c, 0, m - 1);
    }
    j += u32(c) * stride;
    stride *= u32(m);
  }
  if (inside || u.mode == 1u) {
    out[i] = src[j];
  } else {
    out[i] = bitcast<{{T}}>(u.bits);
  }
}
