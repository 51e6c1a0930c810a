//! A streaming reader of Unix `ar` archives, the container of .deb files
//! (deb(5): `!<arch>\n`, then 60-byte member headers, bodies padded to even size).

use std::io::{self, Read};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub size: u64,
}

pub struct ArReader<R> {
    inner: R,
    /// Unread bytes of the current member's body.
    left: u64,
    /// A padding byte follows the current member.
    pad: bool,
    what: String,
}

impl<R: Read> ArReader<R> {
    /// Checks the global header; `what` names the archive in errors.
    pub fn new(mut inner: R, what: &str) -> Result<Self> {
        let mut magic = [0u8; 8];
        read_full(&mut inner, &mut magic, what)?;
        if &magic != MAGIC {
            return Err(Error::format(what, "not an ar archive"));
        }
        Ok(ArReader {
            inner,
            left: 0,
            pad: false,
            what: what.to_string(),
        })
    }

    /// Advances to the next member, skipping what is left of the current one.
    /// `None` at a clean end of archive.
    pub fn next_member(&mut self) -> Result<Option<Member>> {
        let skip = self.left + u64::from(self.pad);
        let skipped = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())
            .map_err(|e| self.read_err(e))?;
        if skipped != skip {
            // A missing final padding byte is tolerated, like GNU ar does.
            if skipped + 1 != skip || !self.pad {
                return Err(Error::format(&self.what, "truncated member"));
            }
        }
        self.left = 0;
        self.pad = false;
        let mut hdr = [0u8; HEADER];
        let n = read_some(&mut self.inner, &mut hdr).map_err(|e| self.read_err(e))?;
        if n == 0 {
            return Ok(None);
        }
        if n < HEADER {
            return Err(Error::format(&self.what, "truncated member header"));
        }
        if &hdr[58..60] != b"`\n" {
            return Err(Error::format(&self.what, "bad member header magic"));
        }
        let field = |r: std::ops::Range<usize>| String::from_utf8_lossy(&hdr[r]).trim().to_string();
        let name = field(0..16);
        let name = name.strip_suffix('/').unwrap_or(&name).to_string();
        let size: u64 = field(48..58)
            .parse()
            .map_err(|_| Error::format(&self.what, "bad member size"))?;
        self.left = size;
        self.pad = size % 2 == 1;
        Ok(Some(Member { name, size }))
    }

    /// Reads the current member's body (errors on a body cut short).
    pub fn body(&mut self) -> Body<'_, R> {
        Body { ar: self }
    }

    fn read_err(&self, e: io::Error) -> Error {
        Error::Read {
            what: self.what.clone(),
            source: e,
        }
    }
}

pub struct Body<'a, R> {
    ar: &'a mut ArReader<R>,
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ar.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.ar.left).unwrap_or(usize::MAX));
        let n = self.ar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "ar member body is truncated",
            ));
        }
        self.ar.left -= n as u64;
        Ok(n)
    }
}

/// Reads until `buf` is full or EOF; returns the count.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_full(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    let n = read_some(r, buf).map_err(|e| Error::Read {
        what: what.to_string(),
        source: e,
    })?;
    if n != buf.len() {
        return Err(Error::format(what, "truncated"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an ar archive in the GNU style dpkg-deb writes.
    pub(crate) fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (name, data) in members {
            let hdr = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                format!("{name}/"),
                0,
                0,
                0,
                "100644",
                data.len()
            );
            assert_eq!(hdr.len(), HEADER);
            out.extend_from_slice(hdr.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn members(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut ar = ArReader::new(data, "test.deb")?;
        let mut out = Vec::new();
        while let Some(m) = ar.next_member()? {
            let mut body = Vec::new();
            ar.body().read_to_end(&mut body).map_err(|e| Error::Read {
                what: "body".into(),
                source: e,
            })?;
            assert_eq!(body.len() as u64, m.size);
            out.push((m.name, body));
        }
        Ok(out)
    }

    #[test]
    fn reads_members_with_padding() {
        let a = build(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", b"odd"),
            ("data.tar", b"xy"),
        ]);
        let m = members(&a).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], ("debian-binary".to_string(), b"2.0\n".to_vec()));
        assert_eq!(m[1], ("control.tar.xz".to_string(), b"odd".to_vec()));
        assert_eq!(m[2], ("data.tar".to_string(), b"xy".to_vec()));
        // Skipping bodies without reading them works too.
        let mut ar = ArReader::new(&a[..], "t").unwrap();
        let mut names = Vec::new();
        while let Some(m) = ar.next_member().unwrap() {
            names.push(m.name);
        }
        assert_eq!(names, ["debian-binary", "control.tar.xz", "data.tar"]);
    }

    #[test]
    fn corrupt_and_truncated_archives_are_errors() {
        let a = build(&[("debian-binary", b"2.0\n"), ("data.tar", b"hello world")]);
        assert!(ArReader::new(&b"!<arc"[..], "t").is_err());
        assert!(ArReader::new(&b"notanar!"[..], "t").is_err());
        // Every truncation point either ends cleanly at a member boundary or errors.
        for cut in 8..a.len() - 1 {
            let r = members(&a[..cut]);
            let boundary = cut == 8 || cut == 8 + HEADER + 4;
            assert_eq!(r.is_ok(), boundary, "cut at {cut}");
        }
        let mut bad = a.clone();
        bad[8 + 58] = b'X';
        assert!(members(&bad).is_err());
        let mut bad = a.clone();
        bad[8 + 48] = b'z';
        assert!(members(&bad).is_err());
        // A size far beyond the data.
        let mut bad = a;
        bad[8 + 48..8 + 58].copy_from_slice(b"9999999999");
        assert!(members(&bad).is_err());
    }
}
