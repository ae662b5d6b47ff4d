// Prelude prepended to every shader file (src/gpu/pipeline.rs): definitions that must agree
// across kernel families and with the CPU references (src/cpu/elementwise.rs).

// Leaky-ReLU6: u on [0, 6], a·u below 0, 6 + a·(u − 6) above 6; a = 0 is ReLU6.
fn leaky_relu6(u: f32, a: f32) -> f32 {
    if (u < 0.0) { return a * u; }
    if (u > 6.0) { return 6.0 + a * (u - 6.0); }
    return u;
}

// Its derivative at u: 1 inside [0, 6] (the kinks take the inside value), a outside.
fn leaky_relu6_slope(u: f32, a: f32) -> f32 {
    return select(1.0, a, u < 0.0 || u > 6.0);
}

