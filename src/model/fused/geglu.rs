//! Gemma's MLP gate: gelu_tanh(gate) · up as one node, keeping only its two inputs. Composed
//! from candle ops on every device (computed in f32, as the gate is small next to the
//! projections around it).

use super::Fused;
use candle_core::{DType, Result, Tensor};

pub struct GeGlu;

/// √(2/π), the tanh approximation's constant.
const C: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;

impl Fused for GeGlu {
    fn name(&self) -> &'static str {
        "geglu"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (gate, up) = (&args[0], &args[1]);
        let dtype = gate.dtype();
        // candle's `gelu` is the tanh approximation (transformers' gelu_pytorch_tanh).
        let g = gate.to_dtype(DType::F32)?.gelu()?;
        (g * up.to_dtype(DType::F32)?)?.to_dtype(dtype)
    }

    /// d gate = g · up · gelu'(gate); d up = g · gelu(gate), where with u = C(x + 0.044715x³),
    /// gelu'(x) = ½(1 + tanh u) + ½x(1 − tanh² u)·C(1 + 3·0.044715x²).
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let dtype = args[0].dtype();
        let x = args[0].to_dtype(DType::F32)?;
        let up = args[1].to_dtype(DType::F32)?;
        let g = grad.to_dtype(DType::F32)?;
        let x2 = x.sqr()?;
        let t = ((&x + (&x * &x2)? * CUBIC)? * C)?.tanh()?;
        let half_one_plus_t = ((&t + 1.0)? * 0.5)?;
        let gelu = (&x * &half_one_plus_t)?;
        let du_dx = ((x2 * (3.0 * CUBIC))? + 1.0)? * C;
        let sech2 = (1.0 - t.sqr()?)?;
        let dgelu = (half_one_plus_t + ((&x * 0.5)? * sech2)?.mul(&du_dx?)?)?;
        let d_gate = ((&g * up)? * dgelu)?.to_dtype(dtype)?;
        let d_up = (g * gelu)?.to_dtype(dtype)?;
        Ok(vec![Some(d_gate), Some(d_up)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The hand-written backward equals candle's autograd through the composed ops.
    #[test]
    fn backward_matches_autograd() {
        let dev = Device::Cpu;
        let gate = Var::new(&[-3.0f32, -0.7, 0.0, 0.4, 2.5], &dev).unwrap();
        let up = Var::new(&[0.5f32, -1.2, 2.0, 0.9, -0.3], &dev).unwrap();
        let grad = Tensor::new(&[1.0f32, 0.5, -2.0, 0.25, 1.5], &dev).unwrap();
        let y = (gate.as_tensor().gelu().unwrap() * up.as_tensor()).unwrap();
        let store = (y * &grad).unwrap().sum_all().unwrap().backward().unwrap();
        let ours = GeGlu
            .backward(
                &[gate.as_tensor().clone(), up.as_tensor().clone()],
                &grad,
                &grad,
            )
            .unwrap();
        for (var, mine) in [(&gate, &ours[0]), (&up, &ours[1])] {
            let want: Vec<f32> = store.get(var).unwrap().to_vec1().unwrap();
            let got: Vec<f32> = mine.as_ref().unwrap().to_vec1().unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
    }
}
