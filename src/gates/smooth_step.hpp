// The smooth step of DSelect-k and COMET (Hazimeh et al. 2021): S(t) = 0 for t <= -gamma/2, 1 for
// t >= gamma/2, -2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2 between; its exact 0 and 1 outside make
// the gates sparse, and its zero derivative there freezes a saturated unit.
#pragma once

namespace mt {

inline float smooth_step(float t, float gamma) {
  if (t <= -gamma / 2) return 0.0f;
  if (t >= gamma / 2) return 1.0f;
  return -2.0f * t * t * t / (gamma * gamma * gamma) + 3.0f * t / (2.0f * gamma) + 0.5f;
}

inline float smooth_step_grad(float t, float gamma) {
  if (t <= -gamma / 2 || t >= gamma / 2) return 0.0f;
  return -6.0f * t * t / (gamma * gamma * gamma) + 3.0f / (2.0f * gamma);
}

}  // namespace mt
