//! The workbench: a terminal UI over the engine. `app` holds the state and its update
//! function, `view` draws it, `engine` carries out the effects off the UI thread, `run`
//! is the event loop.

pub mod app;
pub mod checks;
pub mod compare;
pub mod data;
pub mod discover;
mod engine;
pub mod follow;
pub mod generate;
pub mod hardware;
pub mod keys;
mod model_worker;
pub mod models;
mod run;
pub mod series;
pub mod serve;
mod services;
pub mod sweeps;
pub mod theme;
pub mod training;
pub mod view;

pub use run::run;
