//! `cargo xtask bundle`: build the Lambda's release `bootstrap`, check that it loads on
//! Amazon Linux 2023, and zip it deterministically (fixed timestamp and mode), so an
//! unchanged build has an unchanged SHA-256 and `deploy` skips the code update.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Amazon Linux 2023 ships glibc 2.34: a binary needing a newer symbol will not start.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub package: String,
    pub zip_path: PathBuf,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    /// Lowercase hex SHA-256 of the zip (content address).
    pub sha256_hex: String,
    /// Base64 SHA-256 of the zip: Lambda's `CodeSha256`.
    pub code_sha256: String,
    /// Highest `GLIBC_x.y` version the binary requires.
    pub glibc: Option<(u32, u32)>,
}

/// Where the zip of `package` is written.
pub fn zip_path(package: &str) -> PathBuf {
    crate::workspace::target_dir()
        .join("stripstack")
        .join("bundle")
        .join(format!("{package}.zip"))
}

/// Builds `package`'s `bootstrap` in release mode and zips it.
pub fn build(package: &str) -> anyhow::Result<Bundle> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(crate::workspace::root())
        .args([
            "build",
            "--release",
            "--package",
            package,
            "--bin",
            "bootstrap",
        ])
        .status()
        .with_context(|| format!("while running `cargo build --release -p {package}`"))?;
    if !status.success() {
        anyhow::bail!(
            "building the `{package}` Lambda failed ({status}); see the compiler output above"
        );
    }
    let binary = crate::workspace::target_dir()
        .join("release")
        .join("bootstrap");
    package_binary(package, &binary, &zip_path(package))
}

/// Checks and zips an already built `bootstrap`.
pub fn package_binary(package: &str, binary: &Path, zip_path: &Path) -> anyhow::Result<Bundle> {
    let bytes = std::fs::read(binary)
        .with_context(|| format!("while reading the built binary {}", binary.display()))?;
    let glibc = max_glibc(&bytes);
    if let Some(version) = glibc {
        if version > MAX_GLIBC {
            anyhow::bail!(
                "{} needs GLIBC_{}.{} but Amazon Linux 2023 has {}.{}: build against an older \
                 glibc, e.g. `pip install ziglang cargo-zigbuild` then \
                 `cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.34 -p {package}`",
                binary.display(),
                version.0,
                version.1,
                MAX_GLIBC.0,
                MAX_GLIBC.1
            );
        }
    }
    let zip = match zip_holding(zip_path, &bytes) {
        Some(zip) => zip,
        None => {
            let zip = deterministic_zip("bootstrap", &bytes)?;
            write_atomically(zip_path, &zip)?;
            zip
        }
    };
    let digest = Sha256::digest(&zip);
    Ok(Bundle {
        package: package.to_owned(),
        zip_path: zip_path.to_owned(),
        binary_bytes: bytes.len() as u64,
        zip_bytes: zip.len() as u64,
        sha256_hex: hex::encode(digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        glibc,
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

/// A zip holding one executable file, byte-identical for identical contents: fixed
/// timestamp (1980-01-01), mode 0755, fixed compression settings.
pub fn deterministic_zip(name: &str, contents: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
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

/// The highest `GLIBC_x.y` symbol version named in the binary (its version-needs table).
pub fn max_glibc(binary: &[u8]) -> Option<(u32, u32)> {
    let needle = b"GLIBC_";
    memchr::memmem::find_iter(binary, needle)
        .filter_map(|at| {
            let rest = &binary[at + needle.len()..];
            let end = rest
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .unwrap_or(rest.len());
            let text = std::str::from_utf8(&rest[..end]).ok()?;
            let mut parts = text.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some((major, minor))
        })
        .max()
}

/// Loads a bundle zip already on disk (for `plan`: compare without rebuilding).
pub fn existing(package: &str) -> Option<(String, String)> {
    let zip = std::fs::read(zip_path(package)).ok()?;
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
        let a = deterministic_zip("bootstrap", b"binary one").unwrap();
        let b = deterministic_zip("bootstrap", b"binary one").unwrap();
        let c = deterministic_zip("bootstrap", b"binary two").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    }

    #[test]
    fn an_unchanged_build_reuses_its_zip_and_a_changed_one_replaces_it() {
        let dir = std::env::temp_dir().join(format!("stripstack-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (binary, zip_path) = (dir.join("bootstrap"), dir.join("lambda.zip"));
        let expected = |contents: &[u8]| {
            hex::encode(Sha256::digest(
                deterministic_zip("bootstrap", contents).unwrap(),
            ))
        };

        assert_eq!(zip_holding(&zip_path, b"build one"), None, "no zip yet");
        std::fs::write(&binary, b"build one").unwrap();
        let first = package_binary("lambda", &binary, &zip_path).unwrap();
        assert_eq!(first.sha256_hex, expected(b"build one"));
        assert!(zip_holding(&zip_path, b"build one").is_some());
        assert_eq!(zip_holding(&zip_path, b"build two"), None);
        assert_eq!(zip_holding(&zip_path, b"build on"), None);
        assert_eq!(package_binary("lambda", &binary, &zip_path).unwrap(), first);

        std::fs::write(&binary, b"build two").unwrap();
        let second = package_binary("lambda", &binary, &zip_path).unwrap();
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
            package_binary("lambda", &binary, &zip_path).unwrap(),
            second
        );

        std::fs::write(&zip_path, b"not a zip").unwrap();
        assert_eq!(zip_holding(&zip_path, b"build two"), None);
        assert_eq!(
            package_binary("lambda", &binary, &zip_path).unwrap(),
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
}
