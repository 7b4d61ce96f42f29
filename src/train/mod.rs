//! Training: losses, learning-rate schedules and optimiser steps for LoRA on a frozen base.

pub mod events;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod trainer;
