//! `cargo xtask bundle`: build the Lambda's `bootstrap` for the function's Lambda target
//! (x86_64 or arm64, against glibc 2.34, with cargo-zigbuild: the same binary from any
//! machine), check that Lambda can start it (an ELF executable for the declared machine,
//! only the libraries Amazon Linux 2023 has, GLIBC ≤ 2.34), and zip it deterministically
//! (fixed timestamp and mode), so an unchanged build has an unchanged SHA-256 and `deploy`
//! skips the code update.
//!
//! The `local` environment builds for the host instead ([`BuildTarget::Host`]): the emulator
//! runs the bootstrap as a process of this machine, whatever Lambda would need.
//!
//! - [`elf`]: what a built binary is and whether Lambda can run it (pure).
//! - [`toolchain`]: cargo-zigbuild, zig and the Rust target, installed on first use.

pub mod elf;
pub mod toolchain;

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use anyhow::Context as _;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Amazon Linux 2023 ships glibc 2.34: a binary needing a newer symbol will not start.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

/// The Cargo profile of builds for Lambda (`[profile.lambda]` in the workspace's
/// `Cargo.toml`: release, plus what makes the zip small); host builds use `dev`.
pub const LAMBDA_PROFILE: &str = "lambda";

/// The workspace's feature-unification crate (cargo-hakari's workspace-hack): added to a
/// host build's package selection so that it shares the xtask's compiled dependencies.
const HACK_PACKAGE: &str = "workspace-hack";

/// A Lambda architecture, as the stack file and Lambda's API name it (`x86_64`, `arm64`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
pub enum LambdaTarget {
    #[serde(rename = "x86_64")]
    #[value(name = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    #[value(name = "arm64")]
    Arm64,
}

impl LambdaTarget {
    pub const ALL: [LambdaTarget; 2] = [LambdaTarget::X86_64, LambdaTarget::Arm64];

    /// Lambda's name of the architecture (`Architectures` in the API, CloudFormation).
    pub fn architecture(self) -> &'static str {
        match self {
            LambdaTarget::X86_64 => "x86_64",
            LambdaTarget::Arm64 => "arm64",
        }
    }

    /// The Rust target triple.
    pub fn triple(self) -> &'static str {
        match self {
            LambdaTarget::X86_64 => "x86_64-unknown-linux-gnu",
            LambdaTarget::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// cargo-zigbuild's target: the triple with the glibc version to link against.
    pub fn zig_target(self) -> String {
        format!("{}.{}.{}", self.triple(), MAX_GLIBC.0, MAX_GLIBC.1)
    }

    /// The ELF `e_machine` of its binaries.
    pub fn machine(self) -> elf::Machine {
        match self {
            LambdaTarget::X86_64 => elf::Machine::X86_64,
            LambdaTarget::Arm64 => elf::Machine::Aarch64,
        }
    }

    /// What a binary must be to start on Lambda with this architecture.
    pub fn requirements(self) -> elf::Requirements {
        elf::Requirements {
            machine: self.machine(),
            max_glibc: MAX_GLIBC,
        }
    }

    /// The architecture of this machine's CPU, when it is one Lambda has.
    pub fn host() -> Option<LambdaTarget> {
        if cfg!(target_arch = "x86_64") {
            Some(LambdaTarget::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(LambdaTarget::Arm64)
        } else {
            None
        }
    }
}

impl fmt::Display for LambdaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.architecture())
    }
}

impl FromStr for LambdaTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "x86_64" => Ok(LambdaTarget::X86_64),
            "arm64" => Ok(LambdaTarget::Arm64),
            "aarch64" | "graviton" => Err(format!(
                "unknown architecture `{text}`: Lambda calls it `arm64`"
            )),
            "amd64" | "x86-64" | "x64" => Err(format!(
                "unknown architecture `{text}`: Lambda calls it `x86_64`"
            )),
            _ => Err(format!(
                "unknown architecture `{text}`: Lambda has `arm64` and `x86_64`"
            )),
        }
    }
}

/// What a bundle is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildTarget {
    /// Lambda itself: cross-built with cargo-zigbuild against glibc 2.34 and checked.
    Lambda(LambdaTarget),
    /// This machine, for the local emulator, which runs the bootstrap as a host process:
    /// a dev-profile `cargo build`, whatever the host (a Mac too); not checked against
    /// Lambda's image, since it never goes there. The dev profile is the xtask's: the AWS SDK
    /// and the HTTP/TLS stack the xtask already compiled are reused, not built again in
    /// another profile, and the stripper is optimised in it anyway
    /// (`[profile.dev.package.lambda]`). Against a plain-HTTP emulator on this machine,
    /// release speed buys nothing.
    Host,
}

impl BuildTarget {
    /// The target a function's bundle is built for: the host when its environment runs on
    /// the local emulator, else the function's declared architecture.
    pub fn for_function(emulated: bool, architecture: LambdaTarget) -> BuildTarget {
        if emulated {
            BuildTarget::Host
        } else {
            BuildTarget::Lambda(architecture)
        }
    }

    /// The name of its zip and its label in plans: the Rust triple, or `host`.
    pub fn label(self) -> &'static str {
        match self {
            BuildTarget::Lambda(target) => target.triple(),
            BuildTarget::Host => "host",
        }
    }

    /// The Lambda architecture the bundle runs as: the declared one, or the host's CPU for
    /// a host build (what the emulator runs it on; `None` on a CPU Lambda does not have).
    pub fn architecture(self) -> Option<LambdaTarget> {
        match self {
            BuildTarget::Lambda(target) => Some(target),
            BuildTarget::Host => LambdaTarget::host(),
        }
    }
}

impl fmt::Display for BuildTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildTarget::Lambda(target) => write!(
                f,
                "{target} ({}, glibc {}.{})",
                target.triple(),
                MAX_GLIBC.0,
                MAX_GLIBC.1
            ),
            BuildTarget::Host => match LambdaTarget::host() {
                Some(arch) => write!(f, "host ({arch}, for the local emulator)"),
                None => f.write_str("host (for the local emulator)"),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub package: String,
    /// What it was built for (a plan shows it).
    pub target: BuildTarget,
    /// The built `bootstrap` that was zipped.
    pub binary_path: PathBuf,
    pub zip_path: PathBuf,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    /// Lowercase hex SHA-256 of the zip (content address).
    pub sha256_hex: String,
    /// Base64 SHA-256 of the zip: Lambda's `CodeSha256`.
    pub code_sha256: String,
    /// Highest `GLIBC_x.y` version the binary requires.
    pub glibc: Option<(u32, u32)>,
    /// What the binary is; `None` for a host build that is not ELF (on macOS).
    pub elf: Option<elf::Info>,
}

/// Where the zip of `package` built for `target` is written:
/// `target/stripstack/bundle/<package>-<triple or host>.zip`.
pub fn zip_path_for(package: &str, target: BuildTarget) -> PathBuf {
    crate::workspace::target_dir()
        .join("stripstack")
        .join("bundle")
        .join(format!("{package}-{}.zip", target.label()))
}

/// Where cargo puts the `bootstrap` built for `target`.
pub fn binary_path_for(target: BuildTarget) -> PathBuf {
    let dir = crate::workspace::target_dir();
    match target {
        BuildTarget::Lambda(lambda) => dir.join(lambda.triple()).join(LAMBDA_PROFILE),
        BuildTarget::Host => dir.join("debug"),
    }
    .join("bootstrap")
}

/// Builds `package`'s `bootstrap` for `target` (installing the cross toolchain on first
/// use), checks it and zips it.
pub fn build_for(package: &str, target: BuildTarget) -> anyhow::Result<Bundle> {
    let binary = compile(package, target)?;
    package_binary(package, target, &binary, &zip_path_for(package, target))
}

/// Builds `package`'s `bootstrap` for `target` (profile `lambda` cross-built for Lambda,
/// `dev` for the host); returns the binary.
pub fn compile(package: &str, target: BuildTarget) -> anyhow::Result<PathBuf> {
    let (mut command, shown) = build_command(package, target)?;
    eprintln!("bundle {package} for {target}: {shown}");
    let status = command
        .current_dir(crate::workspace::root())
        .status()
        .with_context(|| format!("while running `{shown}`"))?;
    if !status.success() {
        anyhow::bail!(
            "building the `{package}` Lambda for {target} failed ({status}); see the compiler \
             output above"
        );
    }
    Ok(binary_path_for(target))
}

/// The cargo command that builds `package`'s `bootstrap` for `target` (installing the cross
/// toolchain on first use), and how it is shown.
pub fn build_command(package: &str, target: BuildTarget) -> anyhow::Result<(Command, String)> {
    let build_args = ["--package", package, "--bin", "bootstrap"];
    let (command, shown) = match target {
        BuildTarget::Host => {
            // With the workspace-hack in the selection, every shared dependency resolves
            // to the same features as in `cargo xtask` and `cargo test --workspace`, so the
            // bootstrap links what they compiled (see `workspace-hack/Cargo.toml`).
            let mut command = crate::workspace::cargo();
            command
                .arg("build")
                .args(build_args)
                .args(["--package", HACK_PACKAGE]);
            (
                command,
                format!("cargo build -p {package} -p {HACK_PACKAGE}"),
            )
        }
        BuildTarget::Lambda(lambda) => {
            toolchain::ensure_rust_target(lambda.triple())?;
            let zigbuild = toolchain::ensure_zigbuild()?;
            let mut command = Command::new(zigbuild.program());
            crate::workspace::forget_running_crate(&mut command);
            command
                .args(["zigbuild", "--profile", LAMBDA_PROFILE])
                .args(build_args)
                .arg("--target")
                .arg(lambda.zig_target())
                .env("PATH", zigbuild.path_env()?)
                .env("CARGO", crate::workspace::cargo_program())
                .env("CARGO_ENCODED_RUSTFLAGS", cross_rustflags())
                .env_remove("RUSTFLAGS");
            let shown = format!(
                "cargo zigbuild --profile {LAMBDA_PROFILE} --target {} -p {package}",
                lambda.zig_target()
            );
            (command, shown)
        }
    };
    Ok((command, shown))
}

/// Rust flags of a cross build: the caller's own (`CARGO_ENCODED_RUSTFLAGS` or
/// `RUSTFLAGS`), then path remappings so that no path of this machine (`CARGO_HOME`'s
/// registry sources, the checkout, the target directory) is written into the binary: two
/// machines building the same source get the same bytes. Encoded with 0x1f separators.
pub fn cross_rustflags() -> OsString {
    let mut flags: Vec<OsString> = match std::env::var_os("CARGO_ENCODED_RUSTFLAGS") {
        Some(encoded) if !encoded.is_empty() => encoded
            .to_string_lossy()
            .split('\u{1f}')
            .map(OsString::from)
            .collect(),
        _ => std::env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(OsString::from)
            .collect(),
    };
    flags.extend(remap_flags(
        toolchain::cargo_home().as_deref(),
        &crate::workspace::root(),
        &crate::workspace::target_dir(),
    ));
    let mut encoded = OsString::new();
    for (index, flag) in flags.iter().enumerate() {
        if index > 0 {
            encoded.push("\u{1f}");
        }
        encoded.push(flag);
    }
    encoded
}

/// `--remap-path-prefix` flags, most general first: rustc applies the last that matches.
fn remap_flags(cargo_home: Option<&Path>, root: &Path, target_dir: &Path) -> Vec<OsString> {
    let mut flags = Vec::new();
    let mut remap = |from: &Path, to: &str| {
        let mut flag = OsString::from("--remap-path-prefix=");
        flag.push(from);
        flag.push("=");
        flag.push(to);
        flags.push(flag);
    };
    if let Some(home) = cargo_home {
        remap(home, "/cargo");
    }
    remap(root, "/build");
    remap(target_dir, "/build/target");
    flags
}

/// Checks and zips an already built `bootstrap`: for a Lambda target it must be an
/// executable Lambda can start ([`elf::check`]); a host build is only described.
pub fn package_binary(
    package: &str,
    target: BuildTarget,
    binary: &Path,
    zip_path: &Path,
) -> anyhow::Result<Bundle> {
    let bytes = std::fs::read(binary)
        .with_context(|| format!("while reading the built binary {}", binary.display()))?;
    let elf = match target {
        BuildTarget::Lambda(lambda) => {
            Some(elf::check(&bytes, &lambda.requirements()).map_err(|err| {
                anyhow::anyhow!(
                    "{} cannot run on Lambda ({lambda}): {err}",
                    binary.display()
                )
            })?)
        }
        BuildTarget::Host => elf::inspect(&bytes).ok(),
    };
    let zip = match zip_holding(zip_path, &bytes) {
        Some(zip) => zip,
        None => {
            let zip = deterministic_zip("bootstrap", &bytes, target.zip_level())?;
            write_atomically(zip_path, &zip)?;
            zip
        }
    };
    let digest = Sha256::digest(&zip);
    Ok(Bundle {
        package: package.to_owned(),
        target,
        binary_path: binary.to_owned(),
        zip_path: zip_path.to_owned(),
        binary_bytes: bytes.len() as u64,
        zip_bytes: zip.len() as u64,
        sha256_hex: hex::encode(digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        glibc: elf.as_ref().and_then(elf::Info::max_glibc),
        elf,
    })
}

/// The zip at `zip_path` if it holds exactly `binary` and nothing else, the way
/// [`deterministic_zip`] writes it (name, mode 0755, timestamp, deflate, no comment): an
/// unchanged build is not zipped again (inflating to compare takes a fifth of the time
/// deflating does).
fn zip_holding(zip_path: &Path, binary: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let zip = std::fs::read(zip_path).ok()?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.as_slice())).ok()?;
    if archive.len() != 1 || !archive.comment().is_empty() {
        return None;
    }
    let mut entry = archive.by_index(0).ok()?;
    let as_written = entry.name().ok()? == "bootstrap"
        && entry.size() == binary.len() as u64
        && entry.unix_mode().map(|mode| mode & 0o777) == Some(0o755)
        && entry.compression() == zip::CompressionMethod::Deflated
        && entry.last_modified() == Some(zip::DateTime::default());
    if !as_written {
        return None;
    }
    let mut contents = Vec::with_capacity(binary.len());
    // Reading to the end also checks the entry's CRC-32.
    entry.read_to_end(&mut contents).ok()?;
    drop(entry);
    (contents == binary).then_some(zip)
}

/// Written aside, then renamed over the old zip: another deploy may be uploading it right
/// now, and must read the whole of one version, never a half-rewritten file.
fn write_atomically(zip_path: &Path, zip: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = zip_path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
    }
    let partial = zip_path.with_extension(format!("zip.{}.partial", std::process::id()));
    std::fs::write(&partial, zip)
        .with_context(|| format!("while writing {}", partial.display()))?;
    std::fs::rename(&partial, zip_path)
        .with_context(|| format!("while writing {}", zip_path.display()))
}

/// How hard a bundle's zip is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZipLevel {
    /// What goes to Lambda: deflate level 6, zlib's default (smaller uploads and storage).
    Shipped,
    /// The local emulator's dev-profile bootstrap (≈ 50 MB): deflate level 1, about three
    /// times as fast to make for ≈ 13 % more bytes, sent over loopback.
    Quick,
}

impl ZipLevel {
    fn deflate_level(self) -> i64 {
        match self {
            ZipLevel::Shipped => 6,
            ZipLevel::Quick => 1,
        }
    }
}

impl BuildTarget {
    /// How its zip is compressed.
    pub fn zip_level(self) -> ZipLevel {
        match self {
            BuildTarget::Lambda(_) => ZipLevel::Shipped,
            BuildTarget::Host => ZipLevel::Quick,
        }
    }
}

/// A zip holding one executable file, byte-identical for identical contents and `level`:
/// fixed timestamp (1980-01-01), mode 0755, fixed compression settings.
pub fn deterministic_zip(name: &str, contents: &[u8], level: ZipLevel) -> anyhow::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(level.deflate_level()))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    writer
        .start_file(name, options)
        .context("while starting the zip entry")?;
    writer
        .write_all(contents)
        .context("while writing the zip entry")?;
    Ok(writer
        .finish()
        .context("while finishing the zip")?
        .into_inner())
}

/// The highest `GLIBC_x.y` version the binary needs: read from its version-needs table
/// (`.gnu.version_r`); for a file that does not parse as an ELF executable, the highest
/// `GLIBC_x.y` string in it.
pub fn max_glibc(binary: &[u8]) -> Option<(u32, u32)> {
    match elf::inspect(binary) {
        Ok(info) => info.max_glibc(),
        Err(_) => max_glibc_string(binary),
    }
}

/// The highest `GLIBC_x.y` string anywhere in `bytes`.
fn max_glibc_string(bytes: &[u8]) -> Option<(u32, u32)> {
    let needle = b"GLIBC_";
    memchr::memmem::find_iter(bytes, needle)
        .filter_map(|at| {
            let rest = bytes.get(at + needle.len()..)?;
            let end = rest
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .unwrap_or(rest.len());
            let text = std::str::from_utf8(rest.get(..end)?).ok()?;
            let mut parts = text.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some((major, minor))
        })
        .max()
}

/// The hashes (hex, base64) of `package`'s zip for `target` already on disk (for `plan`:
/// compare without rebuilding).
pub fn existing_for(package: &str, target: BuildTarget) -> Option<(String, String)> {
    let zip = std::fs::read(zip_path_for(package, target)).ok()?;
    let digest = Sha256::digest(&zip);
    Some((
        hex::encode(digest),
        base64::engine::general_purpose::STANDARD.encode(digest),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_is_deterministic_and_content_addressed() {
        let a = deterministic_zip("bootstrap", b"binary one", ZipLevel::Shipped).unwrap();
        let b = deterministic_zip("bootstrap", b"binary one", ZipLevel::Shipped).unwrap();
        let c = deterministic_zip("bootstrap", b"binary two", ZipLevel::Shipped).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    }

    #[test]
    fn the_level_changes_the_zip_not_the_binary_it_holds() {
        use std::io::Read as _;
        // Compressible like a binary's code and tables: repeats with some variety.
        let contents: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let shipped = deterministic_zip("bootstrap", &contents, ZipLevel::Shipped).unwrap();
        let quick = deterministic_zip("bootstrap", &contents, ZipLevel::Quick).unwrap();
        assert_ne!(shipped, quick, "the level is part of what the zip is");
        for zip in [shipped, quick] {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
            let mut unzipped = Vec::new();
            archive
                .by_index(0)
                .unwrap()
                .read_to_end(&mut unzipped)
                .unwrap();
            assert!(unzipped == contents);
        }
        let lambda = BuildTarget::Lambda(LambdaTarget::Arm64);
        assert_eq!(lambda.zip_level(), ZipLevel::Shipped);
        assert_eq!(BuildTarget::Host.zip_level(), ZipLevel::Quick);
    }

    #[test]
    fn an_unchanged_build_reuses_its_zip_and_a_changed_one_replaces_it() {
        let dir = std::env::temp_dir().join(format!("stripstack-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (binary, zip_path) = (dir.join("bootstrap"), dir.join("lambda.zip"));
        let expected = |contents: &[u8]| {
            hex::encode(Sha256::digest(
                deterministic_zip("bootstrap", contents, BuildTarget::Host.zip_level()).unwrap(),
            ))
        };

        assert_eq!(zip_holding(&zip_path, b"build one"), None, "no zip yet");
        std::fs::write(&binary, b"build one").unwrap();
        let first = package_binary("lambda", BuildTarget::Host, &binary, &zip_path).unwrap();
        assert_eq!(first.sha256_hex, expected(b"build one"));
        assert!(zip_holding(&zip_path, b"build one").is_some());
        assert_eq!(zip_holding(&zip_path, b"build two"), None);
        assert_eq!(zip_holding(&zip_path, b"build on"), None);
        assert_eq!(
            package_binary("lambda", BuildTarget::Host, &binary, &zip_path).unwrap(),
            first
        );

        std::fs::write(&binary, b"build two").unwrap();
        let second = package_binary("lambda", BuildTarget::Host, &binary, &zip_path).unwrap();
        assert_eq!(second.sha256_hex, expected(b"build two"));

        // Another zip of the same binary (not executable): made again, not reused.
        let mut other = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        other
            .start_file("bootstrap", zip::write::SimpleFileOptions::default())
            .unwrap();
        other.write_all(b"build two").unwrap();
        std::fs::write(&zip_path, other.finish().unwrap().into_inner()).unwrap();
        assert_eq!(zip_holding(&zip_path, b"build two"), None);
        assert_eq!(
            package_binary("lambda", BuildTarget::Host, &binary, &zip_path).unwrap(),
            second
        );

        std::fs::write(&zip_path, b"not a zip").unwrap();
        assert_eq!(zip_holding(&zip_path, b"build two"), None);
        assert_eq!(
            package_binary("lambda", BuildTarget::Host, &binary, &zip_path).unwrap(),
            second
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn finds_the_highest_glibc_version() {
        let fake = b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0";
        assert_eq!(max_glibc(fake), Some((2, 34)));
        assert_eq!(max_glibc(b"no versions here"), None);
    }

    #[test]
    fn a_lambda_target_refuses_what_lambda_cannot_run_and_writes_no_zip() {
        let dir =
            std::env::temp_dir().join(format!("stripstack-bundle-refuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (binary, zip_path) = (dir.join("bootstrap"), dir.join("lambda.zip"));
        let mut mach_o = vec![0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0, 0, 0x01];
        mach_o.resize(256, 0);
        std::fs::write(&binary, &mach_o).unwrap();
        let target = BuildTarget::Lambda(LambdaTarget::Arm64);
        let err = package_binary("lambda", target, &binary, &zip_path).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("cannot run on Lambda (arm64)"), "{text}");
        assert!(text.contains("macOS (Mach-O)"), "{text}");
        assert!(!zip_path.exists());
        // The same file is a fine host build (the emulator on a Mac runs it).
        let host = package_binary("lambda", BuildTarget::Host, &binary, &zip_path).unwrap();
        assert_eq!(host.elf, None);
        assert_eq!(host.target, BuildTarget::Host);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn targets_name_their_zip_and_their_toolchain() {
        let arm = BuildTarget::Lambda(LambdaTarget::Arm64);
        assert!(zip_path_for("lambda", arm)
            .ends_with("stripstack/bundle/lambda-aarch64-unknown-linux-gnu.zip"));
        assert!(zip_path_for("lambda", BuildTarget::Host).ends_with("bundle/lambda-host.zip"));
        assert!(binary_path_for(arm).ends_with("aarch64-unknown-linux-gnu/lambda/bootstrap"));
        assert!(binary_path_for(BuildTarget::Host).ends_with("debug/bootstrap"));
        assert_eq!(
            LambdaTarget::Arm64.zig_target(),
            "aarch64-unknown-linux-gnu.2.34"
        );
        assert_eq!(
            LambdaTarget::X86_64.zig_target(),
            "x86_64-unknown-linux-gnu.2.34"
        );
        assert_eq!(LambdaTarget::Arm64.machine().code(), 183);
        assert_eq!(LambdaTarget::X86_64.machine().code(), 62);
        assert_eq!(
            arm.to_string(),
            "arm64 (aarch64-unknown-linux-gnu, glibc 2.34)"
        );
        assert_eq!(
            BuildTarget::for_function(true, LambdaTarget::Arm64),
            BuildTarget::Host
        );
        assert_eq!(BuildTarget::for_function(false, LambdaTarget::Arm64), arm);
        assert_eq!(BuildTarget::Host.architecture(), LambdaTarget::host());
    }

    #[test]
    fn architectures_read_and_written_as_lambda_names_them() {
        assert_eq!("arm64".parse(), Ok(LambdaTarget::Arm64));
        assert_eq!("x86_64".parse(), Ok(LambdaTarget::X86_64));
        let err = "aarch64".parse::<LambdaTarget>().unwrap_err();
        assert!(err.contains("`arm64`"), "{err}");
        assert_eq!(
            serde_json::to_string(&LambdaTarget::Arm64).unwrap(),
            "\"arm64\""
        );
        assert_eq!(
            serde_json::from_str::<LambdaTarget>("\"x86_64\"").unwrap(),
            LambdaTarget::X86_64
        );
        assert!(serde_json::from_str::<LambdaTarget>("\"amd64\"").is_err());
    }

    #[test]
    fn cross_builds_remap_every_local_path() {
        let flags = remap_flags(
            Some(Path::new("/home/me/.cargo")),
            Path::new("/home/me/src/stripstack"),
            Path::new("/tmp/target"),
        );
        assert_eq!(
            flags,
            [
                "--remap-path-prefix=/home/me/.cargo=/cargo",
                "--remap-path-prefix=/home/me/src/stripstack=/build",
                "--remap-path-prefix=/tmp/target=/build/target",
            ]
        );
        let encoded = cross_rustflags();
        assert!(encoded
            .to_string_lossy()
            .split('\u{1f}')
            .any(|flag| flag.ends_with("=/build")));
    }
}
