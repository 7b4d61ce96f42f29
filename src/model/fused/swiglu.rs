//! The MLP's gate: silu(gate) · up as one node, keeping only its two inputs (the composed
//! form keeps silu's intermediates too). One kernel each way on the GPU.

use super::kernels::{self, Arg, Kernel};
use super::Fused;
use candle_core::{Result, Tensor};

pub struct SwiGlu;

impl Fused for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (gate, up) = (&args[0], &args[1]);
        if kernels::usable(gate) && up.dtype() == gate.dtype() {
            let n = gate.elem_count();
            let out = (gate.shape(), gate.dtype());
            return Kernel::elementwise(
                "swiglu_bf16",
                n.div_ceil(8),
                out,
                vec![Arg::U64(n as u64)],
            )
            .run(&[gate, up]);
        }
        gate.silu()? * up
    }

    /// d gate = g · up · σ(gate)(1 + gate(1 − σ(gate))); d up = g · silu(gate).
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (gate, up) = (&args[0], &args[1]);
        if kernels::usable(gate) && up.dtype() == gate.dtype() && grad.dtype() == gate.dtype() {
            let n = gate.elem_count();
            let mut dims = gate.dims().to_vec();
            dims.insert(0, 2);
            let both = Kernel::elementwise(
                "swiglu_bwd_bf16",
                n.div_ceil(8),
                (dims, gate.dtype()),
                vec![Arg::U64(n as u64)],
            )
            .run(&[gate, up, grad])?;
            return Ok(vec![Some(both.get(0)?), Some(both.get(1)?)]);
        }
        let sig = candle_nn::ops::sigmoid(gate)?;
        let silu = (gate * &sig)?;
        let dsilu = (&sig * ((gate * (1.0 - &sig)?)? + 1.0)?)?;
        Ok(vec![Some(((grad * up)? * dsilu)?), Some((grad * silu)?)])
    }
}
