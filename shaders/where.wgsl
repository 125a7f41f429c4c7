// out = cond != 0 ? x : y, all three broadcast to the output's shape through strides.
struct U { shape: array<vec4<u32>, 2>, sc: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2>, n: u32, rank: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> c: array<{{TC}}>;
@group(0) @binding(2) var<storage, read> a: array<{{T}}>;
@group(0) @binding(3) var<storage, read> b: array<{{T}}>;
@group(0) @binding(4) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var rem = i;
  var ic = 0u;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    let k = rem % s;
    rem = rem / s;
    ic += k * u.sc[d / 4][d % 4];
    ia += k * u.sa[d / 4][d % 4];
    ib += k * u.sb[d / 4][d % 4];
  }
  out[i] = select(b[ib], a[ia], c[ic] != {{TC}}(0));
}
