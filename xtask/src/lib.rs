//! stripstack's deployer: the `cargo xtask` library. `main.rs` only parses and dispatches.

pub mod aws;
pub mod bench;
pub mod bundle;
mod cfn;
pub mod cli;
mod commands;
pub mod emulator;
mod engine;
mod outputs;
mod plan;
pub mod resources;
mod session;
pub mod stack;
mod strip_cmd;
mod style;
#[cfg(test)]
mod tidy;
mod utc;
mod verify;
pub mod workspace;
