// out[pre, k, post] = x[pre, k, post] + sum, in increasing j, of src[pre, j, post] over the
// positions j whose index is k: torch.index_add through the sorted (index, position) pairs
// (index-sort.wgsl) and their segment offsets (index-offsets.wgsl). Same summation order as
// scatter-add.wgsl, so both routes give bitwise identical results; this one reads each src
// element once instead of scanning the whole index per output element.
struct U { n: u32, size: u32, post: u32, count: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> src: array<{{T}}>;
@group(0) @binding(3) var<storage, read> pairs: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let p = i % u.post;
  let r = i / u.post;
  let k = r % u.size;
  let pre = r / u.size;
  var acc = {{T}}(0);
  for (var s = offsets[k]; s < offsets[k + 1u]; s++) {
    let j = pairs[2u * s + 1u];
    acc += src[(pre * u.count + j) * u.post + p];
  }
  out[i] = x[i] + acc;
}
