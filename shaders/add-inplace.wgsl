// In-place accumulation acc += x over two contiguous tensors of one size (the backward walk's
// gradient sums): the accumulator is read and written through one read_write binding, so no new
// buffer is allocated. {{T}} is a vec4 when the size is a multiple of 4, else a scalar.
alias T = {{T}};
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> acc: array<T>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  acc[i] = acc[i] + x[i];
}
