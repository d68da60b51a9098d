//! The emulator tests, in one test binary, so that they run side by side against one private
//! emulator (four at a time: `.cargo/config.toml`'s `RUST_TEST_THREADS`) instead of one
//! binary after another, each starting its own: most of their time is spent waiting on the
//! emulator and on AWS-like backoff, not on a core. Every test names what it creates
//! uniquely (`stripstack_tests::unique`), so none sees another's resources.
//!
//! Apart, each in a binary of its own: `watch.rs`, which edits the handler's source (a test
//! beside it would build and deploy the edit), `terminal.rs`, which asserts that a warm
//! `cargo xtask` prints nothing of cargo's (a build beside it would make cargo wait for its
//! lock, and say so), and `arm64_bootstrap.rs` (ignored: a cross build, run by `.ci/run`).

mod bench;
mod cloudformation;
mod deploy;
mod deployer_policy;
mod emulator;
mod failures;
mod fault_proxy;
mod lambda_pipeline;
mod real_aws;
mod reconcile;
mod schema;
mod verify;
