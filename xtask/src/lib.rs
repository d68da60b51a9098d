//! stripstack's deployer: the `cargo xtask` library. `main.rs` only parses and dispatches.

pub mod aws;
pub mod bench;
pub mod bundle;
pub mod cfn;
pub mod cli;
mod commands;
pub mod emulator;
pub mod engine;
pub mod outputs;
pub mod plan;
pub mod resources;
mod session;
pub mod stack;
pub mod strip_cmd;
mod style;
#[cfg(test)]
mod tidy;
pub mod verify;
pub mod workspace;
