//! tunelab: a workbench for teaching small language models a job with QLoRA.
//!
//! The engine is this library; the command line (and later the terminal UI) are faces of it.

pub mod bench;
pub mod config;
pub mod data;
pub mod device;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod hw;
pub mod model;
pub mod serve;
pub mod sweep;
pub mod train;
pub mod tui;
