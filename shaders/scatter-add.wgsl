// out[o] = x[o] + sum over j in [0, ishape[dim]), in increasing j, of src[p] for the positions
// p = (o with p[dim] = j) whose index[p] equals o[dim]; p must lie inside ishape on the other
// dims. torch.scatter_add (index and src read through their own strides) and index_add (index
// strides 0 except 1 on dim). Each output element owns its sum: no atomics, a fixed order, so
// the result is bitwise reproducible, at a cost of ishape[dim] index reads per output element.
// Indices outside [0, x.shape[dim]) match no output element and are skipped.
struct U { shape: array<vec4<u32>, 2>, ishape: array<vec4<u32>, 2>, istr: array<vec4<u32>, 2>, sstr: array<vec4<u32>, 2>, n: u32, rank: u32, dim: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read> src: array<{{T}}>;
@group(0) @binding(4) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var rem = i;
  var ib = 0u;
  var sb = 0u;
  var want = 0;
  var inside = true;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    let c = rem % s;
    rem = rem / s;
    if (u32(d) == u.dim) {
      want = i32(c);
    } else {
      inside = inside && c < u.ishape[d / 4][d % 4];
      ib += c * u.istr[d / 4][d % 4];
      sb += c * u.sstr[d / 4][d % 4];
    }
  }
  var acc = {{T}}(0);
  if (inside) {
    let m = u.ishape[u.dim / 4u][u.dim % 4u];
    let istep = u.istr[u.dim / 4u][u.dim % 4u];
    let sstep = u.sstr[u.dim / 4u][u.dim % 4u];
    for (var j = 0u; j < m; j++) {
      if (index[ib + j * istep] == want) { acc += src[sb + j * sstep]; }
    }
  }
  out[i] = x[i] + acc;
}
