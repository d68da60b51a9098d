//! Where things are: the repository root, `stacks/`, `target/`. Found from this crate's
//! manifest directory at build time, so `cargo xtask` works from any folder of the repo.

use std::path::{Path, PathBuf};

/// The repository root (the workspace holding `xtask/`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub fn stacks_dir() -> PathBuf {
    root().join("stacks")
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        None => root().join("target"),
    }
}
