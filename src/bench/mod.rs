//! `tunelab bench`: training-step speed and peak device memory on a fixed workload (random
//! token ids of one shape), for comparing with transformers + PEFT (bench/peft_baseline.py).

pub mod run;
pub mod synthetic;
