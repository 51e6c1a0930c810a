//! Decompression and extraction of selected files from .deb packages
//! (an `ar` archive whose `data.tar.{xz,zst,gz}` member holds the files).

use std::io::{self, Read};

use crate::ar::ArReader;
use crate::error::{Error, Result};

/// Largest LZMA2 dictionary accepted (KiB): `xz -9` needs 64 MiB; a hostile
/// header asking for more is refused instead of allocated.
const XZ_MEM_LIMIT_KB: u32 = 256 * 1024;

/// Wraps `r` in the decompressor that the file name's suffix calls for.
pub fn decompressor<'a, R: Read + 'a>(name: &str, r: R) -> Result<Box<dyn Read + 'a>> {
    if name.ends_with(".xz") {
        Ok(Box::new(lzma_rust2::XzReader::new_mem_limit(
            r,
            true,
            XZ_MEM_LIMIT_KB,
        )))
    } else if name.ends_with(".zst") {
        let d = ruzstd::decoding::StreamingDecoder::new(r)
            .map_err(|e| Error::format(name, format!("bad zstd frame: {e}")))?;
        Ok(Box::new(d))
    } else if name.ends_with(".gz") {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else if name.ends_with(".bz2") || name.ends_with(".lzma") {
        Err(Error::format(name, "unsupported compression"))
    } else {
        Ok(Box::new(r))
    }
}

/// Decompresses a whole buffer.
pub fn decompress(name: &str, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompressor(name, data)?
        .read_to_end(&mut out)
        .map_err(|e| Error::Read {
            what: name.to_string(),
            source: e,
        })?;
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
}

/// One file taken from an archive; `path` is relative (`usr/bin/busybox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub path: String,
    pub payload: Payload,
}

/// Normalizes a tar member path: no leading `./` or `/`, no `..`.
fn normalize(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Extracts the regular files and symlinks for which `want(path)` is true from
/// an uncompressed tar stream. `want` sees every member path, so a caller can
/// list an archive with it too.
pub fn extract_tar(
    r: impl Read,
    what: &str,
    want: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<Extracted>> {
    let tar_err = |e: io::Error| Error::Read {
        what: what.to_string(),
        source: e,
    };
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(r);
    for entry in ar.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = entry.path_bytes();
        let Some(path) = normalize(&String::from_utf8_lossy(&raw)) else {
            continue;
        };
        if !want(&path) {
            continue;
        }
        let kind = entry.header().entry_type();
        let payload = if kind.is_file() {
            let mode = entry.header().mode().map_err(tar_err)? & 0o7777;
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(tar_err)?;
            if data.len() as u64 != entry.size() {
                return Err(Error::format(what, format!("{path} is truncated")));
            }
            Payload::File { data, mode }
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| Error::format(what, format!("symlink {path} has no target")))?;
            Payload::Symlink(String::from_utf8_lossy(&target).into_owned())
        } else if kind.is_hard_link() {
            // Hard links name an earlier member; copy its data if it was taken.
            let target = entry
                .link_name_bytes()
                .and_then(|t| normalize(&String::from_utf8_lossy(&t)))
                .ok_or_else(|| Error::format(what, format!("hard link {path} has no target")))?;
            match out.iter().find(|e: &&Extracted| e.path == target) {
                Some(e) => e.payload.clone(),
                None => {
                    return Err(Error::MissingFile {
                        package: what.to_string(),
                        file: format!("{target} (hard-linked as {path}; select both)"),
                    })
                }
            }
        } else {
            continue;
        };
        out.push(Extracted { path, payload });
    }
    // Read to the end so a corrupt or truncated compressed stream (whose
    // check sits at its end) is an error rather than silently accepted.
    io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(tar_err)?;
    Ok(out)
}

/// Extracts selected files from the data member of a .deb.
pub fn extract_deb(
    deb: impl Read,
    what: &str,
    want: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<Extracted>> {
    let mut ar = ArReader::new(deb, what)?;
    while let Some(m) = ar.next_member()? {
        if m.name.starts_with("data.tar") {
            let member = format!("{what}:{}", m.name);
            let body = ar.body();
            let stream = decompressor(&m.name, body)?;
            return extract_tar(stream, &member, want);
        }
    }
    Err(Error::format(what, "no data.tar member"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn build_tar(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "./usr/", &[][..]).unwrap();
        for (p, d) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o755);
            b.append_data(&mut h, p, *d).unwrap();
        }
        for (p, t) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, p, t).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn extracts_selected_files_and_symlinks() {
        let t = build_tar(
            &[("./usr/bin/busybox", b"BB"), ("./usr/share/doc/x", b"doc")],
            &[("./usr/lib/libz.so.1", "libz.so.1.3")],
        );
        let mut seen = Vec::new();
        let got = extract_tar(&t[..], "t", &mut |p| {
            seen.push(p.to_string());
            p.starts_with("usr/bin/") || p.ends_with(".so.1")
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "usr",
                "usr/bin/busybox",
                "usr/share/doc/x",
                "usr/lib/libz.so.1"
            ]
        );
        assert_eq!(
            got,
            [
                Extracted {
                    path: "usr/bin/busybox".into(),
                    payload: Payload::File {
                        data: b"BB".to_vec(),
                        mode: 0o755
                    }
                },
                Extracted {
                    path: "usr/lib/libz.so.1".into(),
                    payload: Payload::Symlink("libz.so.1.3".into())
                },
            ]
        );
    }

    #[test]
    fn deb_with_gzip_data_member() {
        let t = build_tar(&[("./a", b"A")], &[]);
        let deb = crate::ar::tests::build(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", b"ignored"),
            ("data.tar.gz", &gzip(&t)),
        ]);
        let got = extract_deb(&deb[..], "x.deb", &mut |_| true).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "a");
        let no_data = crate::ar::tests::build(&[("debian-binary", b"2.0\n")]);
        assert!(extract_deb(&no_data[..], "x.deb", &mut |_| true).is_err());
    }

    #[test]
    fn corrupt_and_truncated_tar_is_an_error() {
        let t = build_tar(&[("./usr/bin/busybox", &[7u8; 3000])], &[]);
        // Cut inside the file body.
        assert!(extract_tar(&t[..1500], "t", &mut |_| true).is_err());
        // Garbage header checksum.
        let mut bad = t.clone();
        bad[512 + 10] ^= 0xff;
        assert!(extract_tar(&bad[..], "t", &mut |_| true).is_err());
        // Compressed streams cut short or corrupted.
        let gz = gzip(&t);
        assert!(decompress("x.gz", &gz[..gz.len() / 2]).is_err());
        assert!(decompress("x.xz", b"\xfd7zXZ\0garbage").is_err());
        assert!(decompress("x.zst", b"\x28\xb5\x2f\xfdgarbage").is_err());
        assert!(decompress("x.bz2", b"").is_err());
        let deb = crate::ar::tests::build(&[("data.tar.gz", &gz[..gz.len() - 9])]);
        assert!(extract_deb(&deb[..], "x.deb", &mut |_| true).is_err());
    }

    #[test]
    fn path_normalization() {
        assert_eq!(normalize("./usr//bin/"), Some("usr/bin".into()));
        assert_eq!(normalize("/etc/x"), Some("etc/x".into()));
        assert_eq!(normalize("./"), None);
        assert_eq!(normalize("a/../../etc"), None);
    }
}
