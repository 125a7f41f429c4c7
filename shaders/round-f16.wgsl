// The f16 rounding every kernel with f16 operands applies to its f32-accumulated outputs (matmul
// and conv shaders): not a kernel, a function the engine pastes in as the ROUND_F16 template value for f16
// operands (elementParams in engine/ops/autocast.ts), since WGSL has no include.
// Rounds an f32 to the nearest f16 value (ties to even; past 65504 -> inf), kept in f32. Written
// with bits because compilers fold f32(f16(x)) back to x (lavapipe does).
fn round_f16(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  let mag = bits & 0x7fffffffu;
  if (mag >= 0x7f800000u) { return x; }  // inf, NaN
  if (mag < 0x38800000u) { return round(x * 16777216.0) / 16777216.0; }  // f16 subnormal: 2^-24 steps
  let r = (mag + 0xfffu + ((mag >> 13u) & 1u)) & 0xffffe000u;
  if (r > 0x477fe000u) { return bitcast<f32>((bits & 0x80000000u) | 0x7f800000u); }
  return bitcast<f32>((bits & 0x80000000u) | r);
}
