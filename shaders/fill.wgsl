// out[i] = value (the bits of a 32-bit word, so one kernel fills f32, i32 and u32). {{T}} is a
// vec4<u32> when the size is a multiple of 4 (four words per invocation), else u32.
struct U { n: u32, bits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  out[i] = {{T}}(u.bits);
}
