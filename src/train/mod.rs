//! Training: losses, learning-rate schedules and optimiser steps for LoRA on a frozen base.

pub mod dpo;
pub mod dpo_objective;
pub mod events;
pub mod grpo;
pub mod grpo_health;
pub mod grpo_objective;
pub mod health;
pub mod loss;
pub mod objective;
pub mod optim;
pub mod reference;
pub mod rewards;
pub mod schedule;
pub mod step;
pub mod trainer;
