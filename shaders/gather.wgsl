// out[o] = x[o with o[dim] replaced by index[sum_d o_d * istr_d]]: torch.gather (index strides
// are the index's own, contiguous over the output) and index_select (index strides are 0 except
// 1 on dim). An index outside [0, size) reads as 0 (checkIndexRange reports such indices).
struct U { shape: array<vec4<u32>, 2>, istr: array<vec4<u32>, 2>, xstr: array<vec4<u32>, 2>, n: u32, rank: u32, dim: u32, size: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var rem = i;
  var ii = 0u;
  var xi = 0u;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    let c = rem % s;
    rem = rem / s;
    ii += c * u.istr[d / 4][d % 4];
    if (u32(d) != u.dim) { xi += c * u.xstr[d / 4][d % 4]; }
  }
  let k = index[ii];
  if (k < 0 || u32(k) >= u.size) {
    out[i] = {{T}}(0);
    return;
  }
  out[i] = x[xi + u32(k) * u.xstr[u.dim / 4u][u.dim % 4u]];
}
