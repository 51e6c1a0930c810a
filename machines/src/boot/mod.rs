//! Boot protocols: loading firmware, kernels (ELF, Linux Image, raw) and initrds into
//! guest RAM, placing them the way QEMU's RISC-V boards do, and the OpenSBI
//! `fw_dynamic` hand-off.
//!
//! Loading is split into a pure part (parse the file, work out where it goes) and a
//! write into RAM once every piece is known not to overlap any other.

pub mod elf;
pub mod fw_dynamic;
pub mod image;
pub mod layout;

use std::path::{Path, PathBuf};

/// Errors of loading boot files and placing them in RAM. Every message that concerns a
/// file names it.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("Cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
    #[error("{path} is not a usable RISC-V ELF: {reason}")]
    BadElf { path: PathBuf, reason: String },
    #[error("{path} is not a usable RISC-V Linux Image: {reason}")]
    BadImage { path: PathBuf, reason: String },
    #[error(
        "{path}: {what} [{start:#x}, {end:#x}) lies outside guest RAM [{ram_start:#x}, {ram_end:#x})"
    )]
    OutsideRam {
        path: PathBuf,
        what: &'static str,
        start: u64,
        end: u64,
        ram_start: u64,
        ram_end: u64,
    },
    #[error("No room for the {what} ({size} bytes) in {ram_mib} MiB of guest RAM; raise the memory size")]
    NoRoom {
        what: &'static str,
        size: u64,
        ram_mib: u64,
    },
    #[error("The {a} [{a_start:#x}, {a_end:#x}) overlaps the {b} [{b_start:#x}, {b_end:#x})")]
    Overlap {
        a: &'static str,
        a_start: u64,
        a_end: u64,
        b: &'static str,
        b_start: u64,
        b_end: u64,
    },
}

/// Reads a whole boot file; an empty file is an error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, BootError> {
    let data = std::fs::read(path).map_err(|source| BootError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if data.is_empty() {
        return Err(BootError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

/// What a kernel (or firmware) file is, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Elf,
    /// A RISC-V Linux `Image` (possibly with an EFI/PE stub in front of the header).
    Image,
    Raw,
}

/// Classifies a boot file. Compressed kernels, which need unpacking first, are refused
/// with a hint rather than being run as raw code.
pub fn detect(path: &Path, data: &[u8]) -> Result<FileKind, BootError> {
    if data.starts_with(b"\x7fELF") {
        return Ok(FileKind::Elf);
    }
    if image::has_header(data) {
        return Ok(FileKind::Image);
    }
    let bad = |reason: &str| BootError::BadImage {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if data.starts_with(&[0x1f, 0x8b]) {
        return Err(bad("it is gzip-compressed; pass the uncompressed Image"));
    }
    if data.starts_with(b"MZ") && data.get(4..8) == Some(b"zimg") {
        return Err(bad(
            "it is a compressed EFI zboot image; pass the uncompressed Image",
        ));
    }
    if data.starts_with(b"MZ") {
        return Err(bad("it is a PE/EFI file without a RISC-V Image header"));
    }
    Ok(FileKind::Raw)
}

pub(crate) fn align_up(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1).map(|v| v & !(align - 1))
}

pub(crate) fn align_down(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    x & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let p = Path::new("k");
        assert_eq!(detect(p, b"\x7fELF\x02\x01").unwrap(), FileKind::Elf);
        assert_eq!(detect(p, &[0x13, 0, 0, 0]).unwrap(), FileKind::Raw);
        let e = detect(p, &[0x1f, 0x8b, 8, 0]).unwrap_err().to_string();
        assert!(e.starts_with("k is not") && e.contains("gzip"), "{e}");
        assert!(detect(p, b"MZ\0\0zimg")
            .unwrap_err()
            .to_string()
            .contains("zboot"));
        assert!(detect(p, b"MZ\0\0\0\0\0\0").is_err());
        let mut img = vec![0u8; 64];
        img[0..2].copy_from_slice(b"MZ");
        img[0x38..0x3c].copy_from_slice(b"RSC\x05");
        assert_eq!(detect(p, &img).unwrap(), FileKind::Image);
    }

    #[test]
    fn read_errors_name_the_file() {
        let e = read_file(Path::new("/nonexistent/rivet-kernel")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/rivet-kernel"));
        let dir = std::env::temp_dir().join(format!("rivet-empty-{}", std::process::id()));
        std::fs::write(&dir, b"").unwrap();
        let e = read_file(&dir).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(e, BootError::Empty { .. }), "{e}");
    }

    #[test]
    fn alignment() {
        assert_eq!(align_up(0x8000_0001, 0x20_0000), Some(0x8020_0000));
        assert_eq!(align_up(0x8020_0000, 0x20_0000), Some(0x8020_0000));
        assert_eq!(align_up(u64::MAX, 0x1000), None);
        assert_eq!(align_down(0x8fff_ffff, 0x20_0000), 0x8fe0_0000);
    }
}
