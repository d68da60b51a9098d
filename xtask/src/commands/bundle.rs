//! `cargo xtask bundle`: build and check the Lambda for what its environment runs it on.

use std::process::ExitCode;

use crate::bundle::BuildTarget;
use crate::session::{self, BundleOptions, TargetOptions};

pub(crate) fn run(options: BundleOptions) -> anyhow::Result<ExitCode> {
    let target = match (options.arch, &options.env) {
        (Some(arch), _) => BuildTarget::Lambda(arch),
        (None, None) => BuildTarget::Host,
        (None, Some(env)) => target_in(options.stack.clone(), env, &options.package)?,
    };
    let bundle = crate::bundle::build_for(&options.package, target)?;
    print!("{}", bundle_summary(&bundle));
    Ok(ExitCode::SUCCESS)
}

/// What `deploy --env ENV` would build `package` for: the architecture its functions
/// declare, or the host where the environment runs on the emulator.
fn target_in(stack: Option<String>, env: &str, package: &str) -> anyhow::Result<BuildTarget> {
    let target = TargetOptions {
        env: env.to_owned(),
        stack,
        ..TargetOptions::default()
    };
    let (file, _) = session::load_stack_file(&target)?;
    // The architecture does not depend on the account: resolved offline with a placeholder.
    let stack = file.resolve(env, "000000000000")?;
    session::build_targets(&stack)?
        .into_iter()
        .find(|(p, _)| p == package)
        .map(|(_, target)| target)
        .ok_or_else(|| {
            anyhow::anyhow!("no function of env `{env}` is built from package `{package}`")
        })
}

/// What `cargo xtask bundle` prints.
fn bundle_summary(bundle: &crate::bundle::Bundle) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}", bundle.zip_path.display());
    let _ = writeln!(out, "  target   {}", bundle.target);
    let _ = writeln!(out, "  binary   {} bytes", bundle.binary_bytes);
    let _ = writeln!(out, "  zip      {} bytes", bundle.zip_bytes);
    let _ = writeln!(out, "  sha256   {}", bundle.sha256_hex);
    match &bundle.elf {
        Some(info) => {
            let linking = match info.linking {
                crate::bundle::elf::Linking::Dynamic => "dynamically linked",
                crate::bundle::elf::Linking::Static => "statically linked",
            };
            let _ = writeln!(out, "  elf      {}, {linking}", info.machine);
            if !info.needed.is_empty() {
                let _ = writeln!(out, "  needs    {}", info.needed.join(", "));
            }
        }
        None => {
            let _ = writeln!(out, "  elf      no (a host build for the local emulator)");
        }
    }
    if let Some((major, minor)) = bundle.glibc {
        let (max_major, max_minor) = crate::bundle::MAX_GLIBC;
        let _ = writeln!(
            out,
            "  glibc    needs {major}.{minor} (Amazon Linux 2023 has {max_major}.{max_minor})"
        );
    }
    out
}
