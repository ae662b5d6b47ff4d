//! CPU mirror of [`LinearizedNet`] in any float type: the reference its GPU passes are tested
//! against, and (column by column) the dense Jacobian for closed-form checks on tiny networks.
use super::linearized::LinearizedNet;
use crate::cpu::{self, rules, Real};
use crate::gpu::kernels::gemm::Gemm;
use crate::model::backbone::Hwc;
use crate::ops::ConvSpec;

/// (f0, J·Δ) for `batch` inputs z; parameter sets in `ParamSet` order.
pub fn jvp<T: Real>(net: &LinearizedNet, theta0: &[Vec<T>], z: &[T], batch: usize, delta: &[Vec<T>]) -> (Vec<T>, Vec<T>) {
    let alpha = T::from_f64(net.alpha as f64);
    let (mut a, mut a_dot): (Vec<T>, Option<Vec<T>>) = (z.to_vec(), None);
    let mut shape = net.input;
    for block in &net.blocks {
        let (block_in, block_in_dot) = (a.clone(), a_dot.clone());
        for &k in &block.convs {
            let c = &net.convs[k];
            let s = ConvSpec {
                batch,
                in_h: shape.h,
                in_w: shape.w,
                cin: c.cin,
                cout: c.cout,
                kh: c.k,
                kw: c.k,
                stride: c.stride,
                groups: c.groups,
                padding: c.padding,
            };
            let g = s.validate().expect("valid spec");
            let (u, u_dot) = rules::conv_jvp(&s, &a, a_dot.as_deref(), &theta0[2 * k], Some(&theta0[2 * k + 1]), &delta[2 * k], Some(&delta[2 * k + 1]));
            (a, a_dot) = if c.act {
                let (y, yd) = rules::activation_jvp(alpha, &u, &u_dot);
                (y, Some(yd))
            } else {
                (u, Some(u_dot))
            };
            shape = Hwc { h: g.out_h, w: g.out_w, c: c.cout };
        }
        if block.residual {
            a = cpu::elementwise::axpby(T::ONE, &a, T::ONE, &block_in);
            let ad = a_dot.take().unwrap_or_else(|| vec![T::ZERO; a.len()]);
            a_dot = Some(match block_in_dot {
                Some(bd) => cpu::elementwise::axpby(T::ONE, &ad, T::ONE, &bd),
                None => ad,
            });
        }
    }
    let a_dot = a_dot.unwrap_or_else(|| vec![T::ZERO; a.len()]);
    let hw = shape.h * shape.w;
    let p = cpu::elementwise::global_avg_pool(&a, batch, hw, shape.c);
    let p_dot = cpu::elementwise::global_avg_pool(&a_dot, batch, hw, shape.c);
    let nconv = net.convs.len();
    let g = Gemm::new(batch, net.classes, shape.c);
    let mut f = vec![T::ZERO; batch * net.classes];
    cpu::gemm::gemm(&g, &p, &theta0[2 * nconv], &mut f);
    cpu::gemm::epilogue(&mut f, batch, net.classes, net.classes, Some(&theta0[2 * nconv + 1]), None);
    let mut f_dot = vec![T::ZERO; batch * net.classes];
    cpu::gemm::gemm(&g, &p_dot, &theta0[2 * nconv], &mut f_dot);
    cpu::gemm::gemm(&g.scale(1.0, 1.0), &p, &delta[2 * nconv], &mut f_dot);
    cpu::gemm::epilogue(&mut f_dot, batch, net.classes, net.classes, Some(&delta[2 * nconv + 1]), None);
    (f, f_dot)
}

/// The dense Jacobian of f_lin with respect to Δ, `[batch·classes, P]` row-major, one JVP per column.
pub fn dense_jacobian(net: &LinearizedNet, theta0: &[Vec<f64>], z: &[f64], batch: usize) -> Vec<f64> {
    let lens = net.param_lens();
    let p: usize = lens.iter().sum();
    let rows = batch * net.classes;
    let mut jac = vec![0.0; rows * p];
    let mut delta: Vec<Vec<f64>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut col = 0;
    for t in 0..lens.len() {
        for i in 0..lens[t] {
            delta[t][i] = 1.0;
            let (_, f_dot) = jvp(net, theta0, z, batch, &delta);
            for r in 0..rows {
                jac[r * p + col] = f_dot[r];
            }
            delta[t][i] = 0.0;
            col += 1;
        }
    }
    jac
}
