//! The "newc" cpio format the Linux kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
//! ASCII header (`070701` and 13 eight-digit hex fields), the NUL-terminated
//! name, the data, each padded to 4 bytes; ended by `TRAILER!!!`.

use std::io::Write;

use crate::error::{Error, Result};

const MAGIC: &str = "070701";
const HEADER: usize = 110;
const TRAILER: &str = "TRAILER!!!";

pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// Writes a newc archive. Timestamps are zero and owners root, so the same
/// inputs always give the same bytes.
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            ino: 1,
            written: 0,
        }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> Result<()> {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, b"", 0)
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, data, 0)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        if target.is_empty() || target.contains('\0') {
            return Err(Error::format(
                "initramfs",
                format!("bad symlink target for {path}"),
            ));
        }
        self.entry(path, S_IFLNK | 0o777, 1, target.as_bytes(), 0)
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.entry(
            path,
            S_IFCHR | (perm & 0o7777),
            1,
            b"",
            (major << 16) | (minor & 0xffff),
        )
    }

    /// Writes the trailer and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.raw(TRAILER, 0, 1, b"", 0)?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8], rdev: u32) -> Result<()> {
        let valid = !path.is_empty()
            && !path.starts_with('/')
            && !path.contains('\0')
            && path != TRAILER
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !valid {
            return Err(Error::format("initramfs", format!("bad path {path:?}")));
        }
        self.raw(path, mode, nlink, data, rdev)
    }

    fn raw(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8], rdev: u32) -> Result<()> {
        let size = u32::try_from(data.len())
            .map_err(|_| Error::format("initramfs", format!("{name} is over 4 GiB")))?;
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| Error::format("initramfs", "name too long"))?;
        let ino = if name == TRAILER { 0 } else { self.ino };
        self.ino += 1;
        let hdr = format!(
            "{MAGIC}{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
            0,
            0,
            0,
            0,
            0,
            rdev >> 16,
            rdev & 0xffff,
            0
        );
        let mut buf = Vec::with_capacity(HEADER + name.len() + 8);
        buf.extend_from_slice(hdr.as_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        pad(&mut buf, self.written);
        self.put(&buf)?;
        self.put(data)?;
        let mut tail = Vec::new();
        pad(&mut tail, self.written);
        self.put(&tail)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| Error::io("initramfs", e))?;
        self.written += b.len() as u64;
        Ok(())
    }
}

/// Appends zeros so that `base + buf.len()` is a multiple of 4.
fn pad(buf: &mut Vec<u8>, base: u64) {
    while !(base + buf.len() as u64).is_multiple_of(4) {
        buf.push(0);
    }
}

/// One member of a newc archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub data: Vec<u8>,
    pub rdev_major: u32,
    pub rdev_minor: u32,
}

/// Reads a whole newc archive (for checks and listings).
pub fn read(bytes: &[u8]) -> Result<Vec<Entry>> {
    let err = |r: &str| Error::format("cpio archive", r.to_string());
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let hdr = bytes
            .get(pos..pos + HEADER)
            .ok_or_else(|| err("truncated header"))?;
        if &hdr[..6] != MAGIC.as_bytes() {
            return Err(err("bad magic"));
        }
        let field = |i: usize| -> Result<u32> {
            let s =
                std::str::from_utf8(&hdr[6 + 8 * i..14 + 8 * i]).map_err(|_| err("bad field"))?;
            u32::from_str_radix(s, 16).map_err(|_| err("bad field"))
        };
        let mode = field(1)?;
        let size = field(6)? as usize;
        let (rmaj, rmin) = (field(9)?, field(10)?);
        let namesize = field(11)? as usize;
        let name_end = pos + HEADER + namesize;
        let name = bytes
            .get(pos + HEADER..name_end)
            .ok_or_else(|| err("truncated name"))?;
        let Some((&0, name)) = name.split_last() else {
            return Err(err("name not NUL-terminated"));
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let data_start = name_end.next_multiple_of(4);
        let data_end = data_start
            .checked_add(size)
            .ok_or_else(|| err("size overflow"))?;
        let data = bytes
            .get(data_start..data_end)
            .ok_or_else(|| err("truncated data"))?;
        pos = data_end.next_multiple_of(4);
        if name == TRAILER {
            return Ok(out);
        }
        out.push(Entry {
            name,
            mode,
            data: data.to_vec(),
            rdev_major: rmaj,
            rdev_minor: rmin,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        w.dir("bin", 0o755).unwrap();
        w.file("bin/busybox", 0o755, b"\x7fELF12345").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.dir("dev", 0o755).unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip_and_alignment() {
        let a = sample();
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
        let e = read(&a).unwrap();
        let names: Vec<_> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init"]
        );
        assert_eq!(e[1].mode, S_IFREG | 0o755);
        assert_eq!(e[1].data, b"\x7fELF12345");
        assert_eq!(e[2].mode, S_IFLNK | 0o777);
        assert_eq!(e[2].data, b"busybox");
        assert_eq!(
            (e[4].mode, e[4].rdev_major, e[4].rdev_minor),
            (S_IFCHR | 0o600, 5, 1)
        );
        // Header of the first entry, field by field: ino 1, dir mode, nlink 2,
        // namesize 4 ("bin\0").
        let h = std::str::from_utf8(&a[..HEADER]).unwrap();
        assert_eq!(&h[6..14], "00000001");
        assert_eq!(&h[14..22], "000041ed");
        assert_eq!(&h[38..46], "00000002");
        assert_eq!(&h[94..102], "00000004");
        // Deterministic output.
        assert_eq!(a, sample());
    }

    #[test]
    fn bad_paths_are_rejected() {
        let mut w = Writer::new(Vec::new());
        for p in ["", "/abs", "a//b", "../x", "a/./b", "TRAILER!!!", "nul\0"] {
            assert!(w.file(p, 0o644, b"").is_err(), "{p:?}");
        }
        assert!(w.symlink("a", "").is_err());
    }

    #[test]
    fn corrupt_and_truncated_archives_are_errors() {
        let a = sample();
        for cut in [0, 5, 50, HEADER + 2, a.len() - 4, a.len() - 1] {
            assert!(read(&a[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = a.clone();
        bad[0] = b'1';
        assert!(read(&bad).is_err());
        let mut bad = a.clone();
        bad[60] = b'g'; // inside the size field
        assert!(read(&bad).is_err());
        let mut bad = a;
        bad[54..62].copy_from_slice(b"ffffffff"); // huge size
        assert!(read(&bad).is_err());
    }
}
