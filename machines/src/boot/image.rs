//! The RISC-V Linux `Image` header (Linux `Documentation/arch/riscv/boot-image-header.rst`):
//!
//! ```text
//! 0x00 u32 code0, u32 code1   (an EFI/PE "MZ" stub when the kernel has one)
//! 0x08 u64 text_offset        load offset from the start of RAM
//! 0x10 u64 image_size         effective size, including bss
//! 0x18 u64 flags              bit 0: endianness (0 = little)
//! 0x20 u32 version, u32 res1
//! 0x28 u64 res2
//! 0x30 u64 magic  = "RISCV\0\0\0" (deprecated)
//! 0x38 u32 magic2 = "RSC\x05"
//! 0x3c u32 res3               PE header offset
//! ```
//! All fields are little-endian.

use super::BootError;
use std::path::Path;

pub const HEADER_SIZE: usize = 64;
const MAGIC: &[u8; 8] = b"RISCV\0\0\0";
const MAGIC2: &[u8; 4] = b"RSC\x05";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    /// The memory the kernel occupies once running (file size when the header says 0,
    /// as headers before version 0.2 may).
    pub image_size: u64,
    pub flags: u64,
    pub version: u32,
}

fn le64(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Whether `data` carries either Image magic.
pub fn has_header(data: &[u8]) -> bool {
    data.len() >= HEADER_SIZE && (&data[0x38..0x3c] == MAGIC2 || &data[0x30..0x38] == MAGIC)
}

/// Parses and validates the header of the Image file `path`.
pub fn parse(path: &Path, data: &[u8]) -> Result<ImageHeader, BootError> {
    let bad = |reason: String| BootError::BadImage {
        path: path.to_path_buf(),
        reason,
    };
    if !has_header(data) {
        return Err(bad(if data.len() < HEADER_SIZE {
            format!("{} bytes is shorter than the 64-byte header", data.len())
        } else {
            "no \"RSC\\x05\" magic at offset 0x38".into()
        }));
    }
    let h = ImageHeader {
        text_offset: le64(data, 0x08),
        image_size: le64(data, 0x10),
        flags: le64(data, 0x18),
        version: u32::from_le_bytes([data[0x20], data[0x21], data[0x22], data[0x23]]),
    };
    if h.flags & 1 != 0 {
        return Err(bad("the kernel is big-endian".into()));
    }
    // Linux places RV64 kernels on a 2 MiB (PMD) boundary; an offset that is not page
    // aligned is certainly corrupt.
    if !h.text_offset.is_multiple_of(4096) || h.text_offset >= 1 << 32 {
        return Err(bad(format!("implausible text_offset {:#x}", h.text_offset)));
    }
    if h.image_size >= 1 << 40 {
        return Err(bad(format!("implausible image_size {:#x}", h.image_size)));
    }
    let file = data.len() as u64;
    Ok(ImageHeader {
        image_size: h.image_size.max(file),
        ..h
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len.max(HEADER_SIZE)];
        d[0..2].copy_from_slice(b"MZ");
        d[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        d[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        d[0x20..0x24].copy_from_slice(&0x2u32.to_le_bytes());
        d[0x30..0x38].copy_from_slice(MAGIC);
        d[0x38..0x3c].copy_from_slice(MAGIC2);
        d
    }

    #[test]
    fn parses_a_header() {
        let p = Path::new("Image");
        let h = parse(p, &image(0x20_0000, 0x150_0000, 4096)).unwrap();
        assert_eq!(h.text_offset, 0x20_0000);
        assert_eq!(h.image_size, 0x150_0000);
        assert_eq!(h.version, 2);
        // image_size 0 (old header): the file length counts.
        assert_eq!(parse(p, &image(0, 0, 8192)).unwrap().image_size, 8192);
        // Only the old magic.
        let mut d = image(0x20_0000, 0, 64);
        d[0x38..0x3c].fill(0);
        assert!(parse(p, &d).is_ok());
    }

    #[test]
    fn rejects_bad_headers() {
        let p = Path::new("/boot/vmlinuz");
        let e = parse(p, &image(0x20_0000, 0, 64)[..40])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/boot/vmlinuz") && e.contains("shorter"), "{e}");
        let mut d = image(0x20_0000, 0, 64);
        d[0x38] = b'X';
        d[0x30] = b'X';
        assert!(parse(p, &d).unwrap_err().to_string().contains("magic"));
        let mut d = image(0x20_0000, 0, 64);
        d[0x18] = 1;
        assert!(parse(p, &d).unwrap_err().to_string().contains("big-endian"));
        assert!(parse(p, &image(0x123, 0, 64)).is_err());
        assert!(parse(p, &image(0x20_0000, u64::MAX, 64)).is_err());
        // Every truncation is an error or a header, never a panic.
        let d = image(0x20_0000, 0, 64);
        for len in 0..d.len() {
            assert!(parse(p, &d[..len]).is_err());
        }
    }
}
