//! What a built `bootstrap` is, read from its bytes, and whether Lambda can run it. Pure: no
//! I/O, no panics on any input (a property test feeds it arbitrary bytes), typed errors.
//!
//! Everything is read the way the dynamic loader reads it, through the program headers
//! (section headers may be stripped): `PT_INTERP` names the loader, `PT_DYNAMIC` holds
//! `DT_NEEDED` (the shared libraries), `DT_STRTAB` and `DT_VERNEED` (the symbol versions
//! needed from each library, `.gnu.version_r`), whose addresses are mapped to file offsets
//! through the `PT_LOAD` segments.

use std::fmt;

/// `e_machine` values this project builds for, and a few others worth naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Machine {
    X86_64,
    Aarch64,
    Other(u16),
}

impl Machine {
    pub const EM_X86_64: u16 = 62;
    pub const EM_AARCH64: u16 = 183;

    pub fn from_code(code: u16) -> Machine {
        match code {
            Self::EM_X86_64 => Machine::X86_64,
            Self::EM_AARCH64 => Machine::Aarch64,
            other => Machine::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Machine::X86_64 => Self::EM_X86_64,
            Machine::Aarch64 => Self::EM_AARCH64,
            Machine::Other(code) => code,
        }
    }

    /// The path `PT_INTERP` must name for the binary to start on Amazon Linux 2023.
    pub fn lambda_interpreter(self) -> Option<&'static str> {
        match self {
            Machine::X86_64 => Some("/lib64/ld-linux-x86-64.so.2"),
            Machine::Aarch64 => Some("/lib/ld-linux-aarch64.so.1"),
            Machine::Other(_) => None,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Machine::X86_64 => f.write_str("x86-64"),
            Machine::Aarch64 => f.write_str("AArch64 (arm64)"),
            Machine::Other(3) => f.write_str("i386 (EM_386)"),
            Machine::Other(8) => f.write_str("MIPS (EM_MIPS)"),
            Machine::Other(20) => f.write_str("PowerPC (EM_PPC)"),
            Machine::Other(21) => f.write_str("PowerPC64 (EM_PPC64)"),
            Machine::Other(22) => f.write_str("s390 (EM_S390)"),
            Machine::Other(40) => f.write_str("32-bit ARM (EM_ARM)"),
            Machine::Other(243) => f.write_str("RISC-V (EM_RISCV)"),
            Machine::Other(code) => write!(f, "machine {code}"),
        }
    }
}

/// How the executable is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    /// `PT_INTERP` names a dynamic loader that loads `needed` at start-up.
    Dynamic,
    /// No loader, no libraries (`ET_EXEC` without `PT_INTERP`, or a static PIE).
    Static,
}

/// What an ELF executable is, as far as loading it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub machine: Machine,
    pub linking: Linking,
    /// The dynamic loader (`PT_INTERP`).
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in file order.
    pub needed: Vec<String>,
    /// `(library, version)` from the version-needs table, e.g. `("libc.so.6", "GLIBC_2.34")`.
    pub version_needs: Vec<(String, String)>,
}

impl Info {
    /// The highest numbered `GLIBC_x.y[.z]` version needed, as `(x, y)`.
    pub fn max_glibc(&self) -> Option<(u32, u32)> {
        self.version_needs
            .iter()
            .filter_map(|(_, version)| glibc_number(version))
            .max()
    }
}

/// Why bytes are not an executable Lambda can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header.
    TooShort {
        len: usize,
    },
    /// A Mach-O file (magic `FEEDFACE`/`FEEDFACF`/`CAFEBABE`): built for macOS.
    MachO,
    /// A PE file (`MZ`): built for Windows.
    Pe,
    /// Neither ELF nor anything recognised; the first bytes found.
    NotElf {
        magic: [u8; 4],
    },
    /// An ELF file of the wrong class or byte order.
    NotElf64LittleEndian {
        class: u8,
        data: u8,
    },
    /// `e_type` is not an executable: relocatable object, core dump, shared library.
    NotExecutable {
        kind: &'static str,
    },
    /// A header or table points outside the file or is inconsistent.
    Malformed(&'static str),
    WrongMachine {
        found: Machine,
        expected: Machine,
    },
    /// `PT_INTERP` names another loader than the system's (e.g. a Nix store path).
    WrongInterpreter {
        found: String,
        expected: &'static str,
    },
    /// `DT_NEEDED` libraries the Lambda image does not provide.
    UnexpectedLibraries {
        found: Vec<String>,
    },
    /// A `GLIBC_x.y` symbol version newer than the image's glibc.
    GlibcTooNew {
        needed: (u32, u32),
        max: (u32, u32),
    },
    /// A `GLIBC_*` version need that is not a release number (e.g. `GLIBC_ABI_DT_RELR`,
    /// which only glibc 2.36 and later provide).
    UnknownGlibcVersion {
        version: String,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::TooShort { len } => write!(
                f,
                "it is {len} bytes long, too short for an executable; the build did not \
                 produce a program"
            ),
            ElfError::MachO => f.write_str(
                "this is a macOS (Mach-O) binary, not a Linux one: it was built for the host \
                 instead of Lambda; build it for a Lambda target (`cargo xtask bundle --arch \
                 arm64` or `--arch x86_64` cross-compiles with cargo-zigbuild from any machine)",
            ),
            ElfError::Pe => f.write_str(
                "this is a Windows (PE) binary, not a Linux one; build it for a Lambda target \
                 (`cargo xtask bundle --arch arm64` or `--arch x86_64`)",
            ),
            ElfError::NotElf { magic } => write!(
                f,
                "this is not an ELF executable (it starts with {}); Lambda's provided.al2023 \
                 runtime needs a Linux ELF program named `bootstrap`",
                hex_bytes(magic)
            ),
            ElfError::NotElf64LittleEndian { class, data } => write!(
                f,
                "this is a {} {} ELF file; Lambda runs 64-bit little-endian programs (x86-64 \
                 or arm64)",
                match class {
                    1 => "32-bit",
                    2 => "64-bit",
                    _ => "unknown-class",
                },
                match data {
                    1 => "little-endian",
                    2 => "big-endian",
                    _ => "unknown-byte-order",
                }
            ),
            ElfError::NotExecutable { kind } => write!(
                f,
                "this ELF file is {kind}, not an executable; bundle the package's `bootstrap` \
                 binary"
            ),
            ElfError::Malformed(what) => write!(
                f,
                "this ELF file is damaged ({what}); rebuild it (`cargo clean` if it persists)"
            ),
            ElfError::WrongMachine { found, expected } => write!(
                f,
                "this is an {found} binary but the function runs on {expected}; build for the \
                 function's architecture (`cargo xtask bundle --arch {}`), or change the \
                 function's `architecture`",
                match expected {
                    Machine::Aarch64 => "arm64",
                    _ => "x86_64",
                }
            ),
            ElfError::WrongInterpreter { found, expected } => write!(
                f,
                "its dynamic loader is {found}, which Amazon Linux 2023 does not have (it has \
                 {expected}); this happens when building on NixOS or against a custom \
                 toolchain: build with `cargo xtask bundle`, which links against a standard \
                 glibc with cargo-zigbuild"
            ),
            ElfError::UnexpectedLibraries { found } => write!(
                f,
                "it is linked against {}, which the provided.al2023 image does not provide \
                 (it has {}); drop the dependency that links it (for TLS, use rustls instead \
                 of native-tls/OpenSSL) or link it statically",
                found.join(", "),
                ALLOWED_LIBRARIES.join(", ")
            ),
            ElfError::GlibcTooNew { needed, max } => write!(
                f,
                "it needs GLIBC_{}.{} but Amazon Linux 2023 has glibc {}.{}: it was linked \
                 against the build machine's newer glibc; `cargo xtask bundle --arch …` links \
                 against glibc {}.{} with cargo-zigbuild whatever the machine",
                needed.0, needed.1, max.0, max.1, max.0, max.1
            ),
            ElfError::UnknownGlibcVersion { version } => write!(
                f,
                "it needs the glibc version {version}, which Amazon Linux 2023's glibc does not \
                 provide (a feature of newer glibc releases); `cargo xtask bundle --arch …` \
                 links against glibc 2.34 with cargo-zigbuild"
            ),
        }
    }
}

impl std::error::Error for ElfError {}

/// Shared libraries the `provided.al2023` image has (from glibc and gcc), besides the
/// dynamic loader itself (`ld-linux-*.so.*`).
pub const ALLOWED_LIBRARIES: [&str; 6] = [
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libgcc_s.so.1",
];

/// What a binary must be to start on Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    pub machine: Machine,
    /// The newest `GLIBC_x.y` the image's glibc provides.
    pub max_glibc: (u32, u32),
}

/// Whether a `DT_NEEDED` name is one the Lambda image provides.
pub fn library_allowed(name: &str) -> bool {
    ALLOWED_LIBRARIES.contains(&name) || (name.starts_with("ld-linux-") && name.contains(".so."))
}

/// Reads the binary and checks it against `req`: the first problem found, in the order
/// format, machine, executable kind, loader, libraries, glibc.
pub fn check(bytes: &[u8], req: &Requirements) -> Result<Info, ElfError> {
    let info = inspect(bytes)?;
    if info.machine != req.machine {
        return Err(ElfError::WrongMachine {
            found: info.machine,
            expected: req.machine,
        });
    }
    if let (Some(found), Some(expected)) = (&info.interpreter, req.machine.lambda_interpreter()) {
        if found != expected {
            return Err(ElfError::WrongInterpreter {
                found: found.clone(),
                expected,
            });
        }
    }
    let unexpected: Vec<String> = info
        .needed
        .iter()
        .filter(|name| !library_allowed(name))
        .cloned()
        .collect();
    if !unexpected.is_empty() {
        return Err(ElfError::UnexpectedLibraries { found: unexpected });
    }
    for (_, version) in &info.version_needs {
        if let Some(rest) = version.strip_prefix("GLIBC_") {
            if glibc_number(version).is_none() && rest != "PRIVATE" {
                return Err(ElfError::UnknownGlibcVersion {
                    version: version.clone(),
                });
            }
        }
    }
    if let Some(needed) = info.max_glibc() {
        if needed > req.max_glibc {
            return Err(ElfError::GlibcTooNew {
                needed,
                max: req.max_glibc,
            });
        }
    }
    Ok(info)
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ET_CORE: u16 = 4;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;
const DF_1_PIE: u64 = 0x0800_0000;
/// Bounds on tables, so a damaged file cannot make the reader loop for long.
const MAX_VERNEED: usize = 4096;
const MAX_STRING: usize = 4096;

/// Reads what matters for loading from an ELF64 little-endian executable, without judging it
/// against any requirement except being one.
pub fn inspect(bytes: &[u8]) -> Result<Info, ElfError> {
    let magic: [u8; 4] = match bytes.get(..4).and_then(|b| b.try_into().ok()) {
        Some(magic) => magic,
        None => return Err(ElfError::TooShort { len: bytes.len() }),
    };
    if magic != *b"\x7fELF" {
        return Err(not_elf(magic));
    }
    if bytes.len() < 64 {
        return Err(ElfError::TooShort { len: bytes.len() });
    }
    let file = File(bytes);
    let (class, data) = (file.u8(4)?, file.u8(5)?);
    if (class, data) != (2, 1) {
        return Err(ElfError::NotElf64LittleEndian { class, data });
    }
    let e_type = file.u16(16)?;
    let machine = Machine::from_code(file.u16(18)?);
    match e_type {
        ET_EXEC | ET_DYN => {}
        ET_REL => {
            return Err(ElfError::NotExecutable {
                kind: "a relocatable object (.o)",
            })
        }
        ET_CORE => {
            return Err(ElfError::NotExecutable {
                kind: "a core dump",
            })
        }
        _ => {
            return Err(ElfError::NotExecutable {
                kind: "of an unknown type",
            })
        }
    }
    let phoff = file.u64(32)?;
    let phentsize = file.u16(54)?;
    let phnum = file.u16(56)?;
    if phnum > 0 && usize::from(phentsize) < 56 {
        return Err(ElfError::Malformed("program header entries are too small"));
    }
    let mut segments = Vec::with_capacity(usize::from(phnum));
    for index in 0..u64::from(phnum) {
        let at = index
            .checked_mul(u64::from(phentsize))
            .and_then(|o| o.checked_add(phoff))
            .ok_or(ElfError::Malformed("program headers outside the file"))?;
        let at = file.offset(at, 56, "program headers outside the file")?;
        segments.push(Segment {
            kind: file.u32(at)?,
            offset: file.u64(at + 8)?,
            vaddr: file.u64(at + 16)?,
            filesz: file.u64(at + 32)?,
        });
    }
    let interpreter = match segments.iter().find(|s| s.kind == PT_INTERP) {
        Some(segment) => {
            let start = file.offset(segment.offset, 0, "PT_INTERP outside the file")?;
            let len = usize::try_from(segment.filesz)
                .map_err(|_| ElfError::Malformed("PT_INTERP outside the file"))?;
            let raw = start
                .checked_add(len)
                .and_then(|end| bytes.get(start..end))
                .ok_or(ElfError::Malformed("PT_INTERP outside the file"))?;
            let text = raw.split(|&b| b == 0).next().unwrap_or_default();
            Some(String::from_utf8_lossy(text).into_owned())
        }
        None => None,
    };
    let dynamic = match segments.iter().find(|s| s.kind == PT_DYNAMIC) {
        Some(segment) => Some(read_dynamic(&file, segment)?),
        None => None,
    };
    let (needed_offsets, strtab, strsz, verneed, flags_1) = match &dynamic {
        Some(d) => (d.needed.as_slice(), d.strtab, d.strsz, d.verneed, d.flags_1),
        None => (&[][..], None, None, None, 0),
    };
    let is_pie = flags_1 & DF_1_PIE != 0;
    if e_type == ET_DYN && interpreter.is_none() && !is_pie {
        return Err(ElfError::NotExecutable {
            kind: "a shared library",
        });
    }
    let strings = match strtab {
        Some(address) => {
            let start = map_address(&segments, address)
                .ok_or(ElfError::Malformed("DT_STRTAB outside the loaded segments"))?;
            let start = file.offset(start, 0, "DT_STRTAB outside the file")?;
            let len = strsz
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(bytes.len() - start);
            let end = start
                .checked_add(len)
                .filter(|&end| end <= bytes.len())
                .ok_or(ElfError::Malformed("DT_STRSZ beyond the end of the file"))?;
            bytes.get(start..end)
        }
        None => None,
    };
    let string = |offset: u64| -> Result<String, ElfError> {
        let table = strings.ok_or(ElfError::Malformed("names without a string table"))?;
        let start = usize::try_from(offset)
            .ok()
            .filter(|&s| s < table.len())
            .ok_or(ElfError::Malformed("a name outside the string table"))?;
        let rest = table.get(start..).unwrap_or_default();
        let end = rest
            .iter()
            .take(MAX_STRING)
            .position(|&b| b == 0)
            .ok_or(ElfError::Malformed(
                "an unterminated name in the string table",
            ))?;
        Ok(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
    };
    let needed = needed_offsets
        .iter()
        .map(|&offset| string(offset))
        .collect::<Result<Vec<_>, _>>()?;
    let mut version_needs = Vec::new();
    if let Some((address, count)) = verneed {
        let mut at = map_address(&segments, address).ok_or(ElfError::Malformed(
            "DT_VERNEED outside the loaded segments",
        ))?;
        for _ in 0..count.min(MAX_VERNEED as u64) {
            let entry = file.offset(at, 16, "a version need outside the file")?;
            let aux_count = file.u16(entry + 2)?;
            let library = string(u64::from(file.u32(entry + 4)?))?;
            let mut aux_at = at
                .checked_add(u64::from(file.u32(entry + 8)?))
                .ok_or(ElfError::Malformed("a version need outside the file"))?;
            for _ in 0..aux_count {
                let aux = file.offset(aux_at, 16, "a version need outside the file")?;
                let version = string(u64::from(file.u32(aux + 8)?))?;
                version_needs.push((library.clone(), version));
                if version_needs.len() > MAX_VERNEED {
                    return Err(ElfError::Malformed("too many version needs"));
                }
                let next = file.u32(aux + 12)?;
                if next == 0 {
                    break;
                }
                aux_at = aux_at
                    .checked_add(u64::from(next))
                    .ok_or(ElfError::Malformed("a version need outside the file"))?;
            }
            let next = file.u32(entry + 12)?;
            if next == 0 {
                break;
            }
            at = at
                .checked_add(u64::from(next))
                .ok_or(ElfError::Malformed("a version need outside the file"))?;
        }
    }
    let linking = if interpreter.is_some() {
        Linking::Dynamic
    } else {
        Linking::Static
    };
    if linking == Linking::Static && !needed.is_empty() {
        return Err(ElfError::Malformed(
            "shared libraries needed but no dynamic loader named",
        ));
    }
    Ok(Info {
        machine,
        linking,
        interpreter,
        needed,
        version_needs,
    })
}

/// `GLIBC_2.34` → `(2, 34)`; `GLIBC_2.2.5` → `(2, 2)`; anything else → `None`.
pub fn glibc_number(version: &str) -> Option<(u32, u32)> {
    let rest = version.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    if parts.any(|p| p.parse::<u32>().is_err()) {
        return None;
    }
    Some((major, minor))
}

fn not_elf(magic: [u8; 4]) -> ElfError {
    const MACH_O: [[u8; 4]; 6] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xcf, 0xfa, 0xed, 0xfe],
        // Universal ("fat") binaries.
        [0xca, 0xfe, 0xba, 0xbe],
        [0xbe, 0xba, 0xfe, 0xca],
    ];
    if MACH_O.contains(&magic) {
        ElfError::MachO
    } else if magic.starts_with(b"MZ") {
        ElfError::Pe
    } else {
        ElfError::NotElf { magic }
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// The file offset holding virtual address `address`, through the `PT_LOAD` segments.
fn map_address(segments: &[Segment], address: u64) -> Option<u64> {
    segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| address >= s.vaddr && address - s.vaddr < s.filesz)
        .and_then(|s| s.offset.checked_add(address - s.vaddr))
}

struct Dynamic {
    needed: Vec<u64>,
    strtab: Option<u64>,
    strsz: Option<u64>,
    verneed: Option<(u64, u64)>,
    flags_1: u64,
}

fn read_dynamic(file: &File<'_>, segment: &Segment) -> Result<Dynamic, ElfError> {
    let start = file.offset(segment.offset, 0, "PT_DYNAMIC outside the file")?;
    let entries = usize::try_from(segment.filesz / 16)
        .map_err(|_| ElfError::Malformed("PT_DYNAMIC outside the file"))?;
    let mut dynamic = Dynamic {
        needed: Vec::new(),
        strtab: None,
        strsz: None,
        verneed: None,
        flags_1: 0,
    };
    let (mut verneed, mut verneed_count) = (None, None);
    for index in 0..entries {
        let at = index
            .checked_mul(16)
            .and_then(|o| o.checked_add(start))
            .ok_or(ElfError::Malformed("PT_DYNAMIC outside the file"))?;
        let (tag, value) = (file.u64(at)?, file.u64(at + 8)?);
        match tag {
            DT_NULL => break,
            DT_NEEDED => dynamic.needed.push(value),
            DT_STRTAB => dynamic.strtab = Some(value),
            DT_STRSZ => dynamic.strsz = Some(value),
            DT_FLAGS_1 => dynamic.flags_1 = value,
            DT_VERNEED => verneed = Some(value),
            DT_VERNEEDNUM => verneed_count = Some(value),
            _ => {}
        }
    }
    dynamic.verneed = match (verneed, verneed_count) {
        (Some(address), Some(count)) => Some((address, count)),
        (None, None) => None,
        _ => return Err(ElfError::Malformed("DT_VERNEED without DT_VERNEEDNUM")),
    };
    Ok(dynamic)
}

/// Bounds-checked little-endian reads.
struct File<'a>(&'a [u8]);

impl File<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], ElfError> {
        at.checked_add(N)
            .and_then(|end| self.0.get(at..end))
            .and_then(|b| b.try_into().ok())
            .ok_or(ElfError::Malformed("a field beyond the end of the file"))
    }

    fn u8(&self, at: usize) -> Result<u8, ElfError> {
        Ok(self.bytes::<1>(at)?[0])
    }

    fn u16(&self, at: usize) -> Result<u16, ElfError> {
        Ok(u16::from_le_bytes(self.bytes(at)?))
    }

    fn u32(&self, at: usize) -> Result<u32, ElfError> {
        Ok(u32::from_le_bytes(self.bytes(at)?))
    }

    fn u64(&self, at: usize) -> Result<u64, ElfError> {
        Ok(u64::from_le_bytes(self.bytes(at)?))
    }

    /// `offset` as an index, with `len` bytes available from it.
    fn offset(&self, offset: u64, len: usize, what: &'static str) -> Result<usize, ElfError> {
        usize::try_from(offset)
            .ok()
            .filter(|&at| at.checked_add(len).is_some_and(|end| end <= self.0.len()))
            .ok_or(ElfError::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LAMBDA_ARM64: Requirements = Requirements {
        machine: Machine::Aarch64,
        max_glibc: (2, 34),
    };
    const LAMBDA_X86_64: Requirements = Requirements {
        machine: Machine::X86_64,
        max_glibc: (2, 34),
    };

    /// A small ELF64 little-endian file built in the test: header, program headers, then the
    /// loader path, the string table, the version needs and the dynamic section, all in one
    /// `PT_LOAD` segment mapped at 0x400000.
    #[derive(Clone)]
    struct TestElf {
        e_type: u16,
        machine: u16,
        interpreter: Option<&'static str>,
        needed: Vec<&'static str>,
        /// Per library, the versions needed from it.
        versions: Vec<(&'static str, Vec<&'static str>)>,
        flags_1: u64,
        dynamic: bool,
    }

    const BASE: u64 = 0x40_0000;

    impl TestElf {
        /// What a Rust `bootstrap` for `machine` looks like.
        fn bootstrap(machine: u16) -> TestElf {
            let interpreter = if machine == Machine::EM_AARCH64 {
                "/lib/ld-linux-aarch64.so.1"
            } else {
                "/lib64/ld-linux-x86-64.so.2"
            };
            TestElf {
                e_type: ET_DYN,
                machine,
                interpreter: Some(interpreter),
                needed: vec!["libgcc_s.so.1", "libm.so.6", "libc.so.6"],
                versions: vec![
                    ("libgcc_s.so.1", vec!["GCC_4.2.0", "GCC_3.0"]),
                    ("libc.so.6", vec!["GLIBC_2.17", "GLIBC_2.34", "GLIBC_2.28"]),
                    ("libm.so.6", vec!["GLIBC_2.29"]),
                ],
                flags_1: DF_1_PIE,
                dynamic: true,
            }
        }

        /// A static executable: no loader, no dynamic section.
        fn static_exec(machine: u16) -> TestElf {
            TestElf {
                e_type: ET_EXEC,
                machine,
                interpreter: None,
                needed: Vec::new(),
                versions: Vec::new(),
                flags_1: 0,
                dynamic: false,
            }
        }

        fn build(&self) -> Vec<u8> {
            let phnum: u16 = 1 + u16::from(self.interpreter.is_some()) + u16::from(self.dynamic);
            let mut body = Vec::new();
            let body_start = 64 + 56 * u64::from(phnum);
            let here = |body: &Vec<u8>| body_start + body.len() as u64;

            let interp = self.interpreter.map(|path| {
                let at = here(&body);
                body.extend_from_slice(path.as_bytes());
                body.push(0);
                (at, path.len() as u64 + 1)
            });

            // String table.
            let strtab = here(&body);
            let mut strings = vec![0u8];
            let mut name = |text: &str| {
                let at = strings.len() as u32;
                strings.extend_from_slice(text.as_bytes());
                strings.push(0);
                at
            };
            let needed: Vec<u32> = self.needed.iter().map(|n| name(n)).collect();
            let versions: Vec<(u32, Vec<u32>)> = self
                .versions
                .iter()
                .map(|(lib, vs)| (name(lib), vs.iter().map(|v| name(v)).collect()))
                .collect();
            body.extend_from_slice(&strings);
            while body.len() % 8 != 0 {
                body.push(0);
            }

            // Version needs: each entry followed by its aux entries.
            let verneed = here(&body);
            for (index, (lib, vs)) in versions.iter().enumerate() {
                let size = 16 + 16 * vs.len() as u32;
                body.extend_from_slice(&1u16.to_le_bytes());
                body.extend_from_slice(&(vs.len() as u16).to_le_bytes());
                body.extend_from_slice(&lib.to_le_bytes());
                body.extend_from_slice(&16u32.to_le_bytes());
                let next = if index + 1 == versions.len() { 0 } else { size };
                body.extend_from_slice(&next.to_le_bytes());
                for (i, v) in vs.iter().enumerate() {
                    body.extend_from_slice(&0u32.to_le_bytes()); // hash (unchecked here)
                    body.extend_from_slice(&0u16.to_le_bytes());
                    body.extend_from_slice(&2u16.to_le_bytes());
                    body.extend_from_slice(&v.to_le_bytes());
                    let next: u32 = if i + 1 == vs.len() { 0 } else { 16 };
                    body.extend_from_slice(&next.to_le_bytes());
                }
            }

            let dynamic = self.dynamic.then(|| {
                let at = here(&body);
                let mut entry = |tag: u64, value: u64| {
                    body.extend_from_slice(&tag.to_le_bytes());
                    body.extend_from_slice(&value.to_le_bytes());
                };
                for offset in &needed {
                    entry(DT_NEEDED, u64::from(*offset));
                }
                entry(DT_STRTAB, BASE + strtab);
                entry(DT_STRSZ, strings.len() as u64);
                if !versions.is_empty() {
                    entry(DT_VERNEED, BASE + verneed);
                    entry(DT_VERNEEDNUM, versions.len() as u64);
                }
                if self.flags_1 != 0 {
                    entry(DT_FLAGS_1, self.flags_1);
                }
                entry(DT_NULL, 0);
                (at, here(&body) - at)
            });

            let total = here(&body);
            let mut file = Vec::new();
            file.extend_from_slice(b"\x7fELF");
            file.extend_from_slice(&[2, 1, 1, 0]);
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&self.e_type.to_le_bytes());
            file.extend_from_slice(&self.machine.to_le_bytes());
            file.extend_from_slice(&1u32.to_le_bytes());
            file.extend_from_slice(&(BASE + body_start).to_le_bytes()); // entry
            file.extend_from_slice(&64u64.to_le_bytes()); // phoff
            file.extend_from_slice(&0u64.to_le_bytes()); // shoff
            file.extend_from_slice(&0u32.to_le_bytes()); // flags
            file.extend_from_slice(&64u16.to_le_bytes()); // ehsize
            file.extend_from_slice(&56u16.to_le_bytes()); // phentsize
            file.extend_from_slice(&phnum.to_le_bytes());
            file.extend_from_slice(&64u16.to_le_bytes()); // shentsize
            file.extend_from_slice(&0u16.to_le_bytes()); // shnum
            file.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
            assert_eq!(file.len(), 64);
            let mut phdr = |kind: u32, offset: u64, size: u64| {
                file.extend_from_slice(&kind.to_le_bytes());
                file.extend_from_slice(&5u32.to_le_bytes());
                file.extend_from_slice(&offset.to_le_bytes());
                file.extend_from_slice(&(BASE + offset).to_le_bytes());
                file.extend_from_slice(&(BASE + offset).to_le_bytes());
                file.extend_from_slice(&size.to_le_bytes());
                file.extend_from_slice(&size.to_le_bytes());
                file.extend_from_slice(&8u64.to_le_bytes());
            };
            if let Some((at, len)) = interp {
                phdr(PT_INTERP, at, len);
            }
            phdr(PT_LOAD, 0, total);
            if let Some((at, len)) = dynamic {
                phdr(PT_DYNAMIC, at, len);
            }
            file.extend_from_slice(&body);
            file
        }
    }

    #[test]
    fn a_lambda_bootstrap_passes_and_is_described() {
        let info = check(
            &TestElf::bootstrap(Machine::EM_AARCH64).build(),
            &LAMBDA_ARM64,
        )
        .unwrap();
        assert_eq!(info.machine, Machine::Aarch64);
        assert_eq!(info.linking, Linking::Dynamic);
        assert_eq!(
            info.interpreter.as_deref(),
            Some("/lib/ld-linux-aarch64.so.1")
        );
        assert_eq!(info.needed, ["libgcc_s.so.1", "libm.so.6", "libc.so.6"]);
        assert_eq!(info.max_glibc(), Some((2, 34)));
        assert!(info
            .version_needs
            .contains(&("libgcc_s.so.1".to_owned(), "GCC_4.2.0".to_owned())));
        assert_eq!(info.version_needs.len(), 6);

        let x86 = check(
            &TestElf::bootstrap(Machine::EM_X86_64).build(),
            &LAMBDA_X86_64,
        )
        .unwrap();
        assert_eq!(x86.machine, Machine::X86_64);
    }

    #[test]
    fn the_wrong_machine_is_refused_naming_both() {
        let err = check(
            &TestElf::bootstrap(Machine::EM_X86_64).build(),
            &LAMBDA_ARM64,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ElfError::WrongMachine {
                found: Machine::X86_64,
                expected: Machine::Aarch64
            }
        );
        let text = err.to_string();
        assert!(text.contains("x86-64 binary"), "{text}");
        assert!(text.contains("--arch arm64"), "{text}");

        let mut riscv = TestElf::bootstrap(Machine::EM_X86_64);
        riscv.machine = 243;
        let err = check(&riscv.build(), &LAMBDA_X86_64).unwrap_err();
        assert!(err.to_string().contains("RISC-V"), "{err}");
    }

    #[test]
    fn a_mac_binary_is_named_as_such() {
        for magic in [
            [0xcf, 0xfa, 0xed, 0xfe], // 64-bit Mach-O, as Apple Silicon and Intel Macs write it
            [0xca, 0xfe, 0xba, 0xbe], // universal binary
        ] {
            let mut bytes = magic.to_vec();
            bytes.extend_from_slice(&[0x0c, 0, 0, 0x01, 0, 0, 0, 0]);
            bytes.resize(4096, 0);
            let err = check(&bytes, &LAMBDA_ARM64).unwrap_err();
            assert_eq!(err, ElfError::MachO);
            assert!(err.to_string().contains("macOS"), "{err}");
        }
        let err = inspect(b"MZ\x90\0 a Windows program").unwrap_err();
        assert_eq!(err, ElfError::Pe);
        let err = inspect(b"#!/bin/sh\necho hello\n").unwrap_err();
        assert!(matches!(err, ElfError::NotElf { .. }));
        assert!(err.to_string().contains("23 21 2f 62"), "{err}");
        assert_eq!(inspect(b"\x7fEL"), Err(ElfError::TooShort { len: 3 }));
    }

    #[test]
    fn a_static_executable_passes_with_nothing_needed() {
        let info = check(
            &TestElf::static_exec(Machine::EM_X86_64).build(),
            &LAMBDA_X86_64,
        )
        .unwrap();
        assert_eq!(info.linking, Linking::Static);
        assert!(info.needed.is_empty());
        assert_eq!(info.max_glibc(), None);
        // …but not for the other machine.
        assert!(matches!(
            check(
                &TestElf::static_exec(Machine::EM_X86_64).build(),
                &LAMBDA_ARM64
            ),
            Err(ElfError::WrongMachine { .. })
        ));
        // A static PIE (ET_DYN, no loader, DF_1_PIE) is an executable too.
        let mut pie = TestElf::bootstrap(Machine::EM_AARCH64);
        pie.interpreter = None;
        pie.needed.clear();
        pie.versions.clear();
        assert_eq!(
            check(&pie.build(), &LAMBDA_ARM64).unwrap().linking,
            Linking::Static
        );
    }

    #[test]
    fn a_shared_library_or_object_is_not_an_executable() {
        let mut library = TestElf::bootstrap(Machine::EM_X86_64);
        library.interpreter = None;
        library.flags_1 = 0;
        assert_eq!(
            check(&library.build(), &LAMBDA_X86_64),
            Err(ElfError::NotExecutable {
                kind: "a shared library"
            })
        );
        let mut object = TestElf::static_exec(Machine::EM_X86_64);
        object.e_type = ET_REL;
        assert!(matches!(
            inspect(&object.build()),
            Err(ElfError::NotExecutable { .. })
        ));
    }

    #[test]
    fn a_newer_glibc_is_refused_with_the_version_found() {
        let mut elf = TestElf::bootstrap(Machine::EM_X86_64);
        elf.versions[1].1.push("GLIBC_2.38");
        let err = check(&elf.build(), &LAMBDA_X86_64).unwrap_err();
        assert_eq!(
            err,
            ElfError::GlibcTooNew {
                needed: (2, 38),
                max: (2, 34)
            }
        );
        assert!(err.to_string().contains("GLIBC_2.38"), "{err}");
        assert!(err.to_string().contains("cargo-zigbuild"), "{err}");

        // glibc 2.36+'s packed relocations need a version AL2023 lacks.
        let mut relr = TestElf::bootstrap(Machine::EM_X86_64);
        relr.versions[1].1.push("GLIBC_ABI_DT_RELR");
        assert_eq!(
            check(&relr.build(), &LAMBDA_X86_64),
            Err(ElfError::UnknownGlibcVersion {
                version: "GLIBC_ABI_DT_RELR".into()
            })
        );
    }

    #[test]
    fn an_unexpected_library_is_refused_by_name() {
        let mut elf = TestElf::bootstrap(Machine::EM_AARCH64);
        elf.needed.insert(1, "libssl.so.3");
        elf.needed.push("libcrypto.so.3");
        elf.needed.push("ld-linux-aarch64.so.1");
        let err = check(&elf.build(), &LAMBDA_ARM64).unwrap_err();
        assert_eq!(
            err,
            ElfError::UnexpectedLibraries {
                found: vec!["libssl.so.3".into(), "libcrypto.so.3".into()]
            }
        );
        assert!(err.to_string().contains("libssl.so.3, libcrypto.so.3"));
    }

    #[test]
    fn a_foreign_loader_is_refused() {
        let mut elf = TestElf::bootstrap(Machine::EM_X86_64);
        elf.interpreter = Some("/nix/store/abc-glibc-2.40/lib/ld-linux-x86-64.so.2");
        assert!(matches!(
            check(&elf.build(), &LAMBDA_X86_64),
            Err(ElfError::WrongInterpreter { .. })
        ));
    }

    #[test]
    fn damaged_headers_are_errors_not_panics() {
        let good = TestElf::bootstrap(Machine::EM_X86_64).build();
        for len in [0, 3, 4, 20, 63, 64, 100, 200, good.len() - 1] {
            assert!(check(&good[..len], &LAMBDA_X86_64).is_err(), "length {len}");
        }
        let mut big_endian = good.clone();
        big_endian[5] = 2;
        assert_eq!(
            inspect(&big_endian),
            Err(ElfError::NotElf64LittleEndian { class: 2, data: 2 })
        );
        let mut far = good.clone();
        far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(inspect(&far), Err(ElfError::Malformed(_))));
    }

    #[test]
    fn glibc_numbers() {
        assert_eq!(glibc_number("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(glibc_number("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(glibc_number("GLIBC_PRIVATE"), None);
        assert_eq!(glibc_number("GCC_3.0"), None);
        assert_eq!(glibc_number("GLIBC_2"), None);
    }

    /// The test binary itself: a real executable linked by this machine's toolchain.
    #[test]
    fn reads_a_real_executable() {
        let bytes = std::fs::read("/proc/self/exe").unwrap();
        let info = inspect(&bytes).unwrap();
        let expected = if cfg!(target_arch = "aarch64") {
            Machine::Aarch64
        } else {
            Machine::X86_64
        };
        assert_eq!(info.machine, expected);
        assert_eq!(info.linking, Linking::Dynamic);
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
        assert!(info.max_glibc().is_some_and(|v| v >= (2, 17)), "{info:?}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check(&bytes, &LAMBDA_ARM64);
        }

        #[test]
        fn a_damaged_bootstrap_never_panics(
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = TestElf::bootstrap(Machine::EM_AARCH64).build();
            for (at, value) in changes {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
            let _ = check(&bytes, &LAMBDA_ARM64);
            let len = cut.index(bytes.len() + 1);
            let _ = check(&bytes[..len], &LAMBDA_ARM64);
        }
    }
}
