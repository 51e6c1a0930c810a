//! A suite's `InRelease` file: the clear-signed Release file of the Debian
//! archive format (wiki.debian.org/DebianRepository/Format). Only the SHA256
//! section and `Acquire-By-Hash` are used. The OpenPGP signature is stripped but
//! not verified yet.

use std::collections::HashMap;

use crate::deb822;
use crate::error::{Error, Result};

/// Size and SHA-256 of one file the Release file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Release {
    /// Path relative to `dists/<suite>/` -> checksum.
    pub sha256: HashMap<String, Entry>,
    /// The archive serves files under `by-hash/SHA256/<hash>` too, which stay
    /// consistent while the mirror syncs.
    pub acquire_by_hash: bool,
}

/// Parses an `InRelease` (clear-signed) or plain `Release` file.
pub fn parse(text: &str, what: &str) -> Result<Release> {
    let body = strip_signature(text, what)?;
    let stanzas = deb822::parse(&body, what)?;
    let Some(st) = stanzas.first() else {
        return Err(Error::format(what, "no fields"));
    };
    let mut rel = Release {
        acquire_by_hash: st
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        ..Release::default()
    };
    let Some(list) = st.get("SHA256") else {
        return Err(Error::format(what, "no SHA256 field"));
    };
    for (i, line) in list.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let lineno = st.line + i;
        let mut it = line.split_whitespace();
        let (Some(hash), Some(size), Some(path), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(Error::parse(
                what,
                lineno,
                "SHA256 line is not `hash size path`",
            ));
        };
        if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::parse(what, lineno, "bad SHA-256 value"));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| Error::parse(what, lineno, "bad size"))?;
        rel.sha256.insert(
            path.to_string(),
            Entry {
                sha256: hash.to_ascii_lowercase(),
                size,
            },
        );
    }
    Ok(rel)
}

/// Returns the signed text of an OpenPGP clear-signed message (RFC 9580 7),
/// undoing dash-escaping; plain text passes through.
fn strip_signature(text: &str, what: &str) -> Result<String> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIG: &str = "-----BEGIN PGP SIGNATURE-----";
    let mut lines = text.lines();
    let first = lines.clone().next().unwrap_or("");
    if first.trim_end() != BEGIN {
        return Ok(text.to_string());
    }
    lines.next();
    // Armor headers ("Hash: SHA256") end at the first blank line.
    loop {
        match lines.next() {
            Some(l) if l.trim().is_empty() => break,
            Some(_) => {}
            None => return Err(Error::format(what, "truncated clear-signed header")),
        }
    }
    let mut body = String::with_capacity(text.len());
    for l in lines {
        if l.trim_end() == SIG {
            return Ok(body);
        }
        body.push_str(l.strip_prefix("- ").unwrap_or(l));
        body.push('\n');
    }
    Err(Error::format(
        what,
        "signed message has no signature block (truncated?)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "849ebdf162f2d9e4621a1c35557df02e3bb8155aec11c1ff3342d83227616c8b";
    const H2: &str = "b26e10b9c51b35f35661faaaf8b198b3db7b007865d7ad9641298382df647987";

    fn signed(body: &str) -> String {
        format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{body}\
             -----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
        )
    }

    #[test]
    fn parses_sha256_section() {
        let body = format!(
            "Origin: Debian\nAcquire-By-Hash: yes\nMD5Sum:\n 58bc30204c16e9a8aa57f9362ecc0d03 1 x\n\
             SHA256:\n {H1} 10419960 main/binary-riscv64/Packages.xz\n {H2}  5091588 main/binary-all/Packages.xz\n"
        );
        let rel = parse(&signed(&body), "InRelease").unwrap();
        assert!(rel.acquire_by_hash);
        assert_eq!(rel.sha256.len(), 2);
        let e = &rel.sha256["main/binary-riscv64/Packages.xz"];
        assert_eq!((e.sha256.as_str(), e.size), (H1, 10419960));
        assert_eq!(rel.sha256["main/binary-all/Packages.xz"].size, 5091588);
        // A plain Release file works the same.
        let plain = parse(&body, "Release").unwrap();
        assert_eq!(plain.sha256, rel.sha256);
    }

    #[test]
    fn dash_escaped_lines_are_unescaped() {
        let body = format!("- Origin: Debian\nSHA256:\n {H1} 1 a\n");
        let rel = parse(&signed(&body), "InRelease").unwrap();
        assert!(!rel.acquire_by_hash);
        assert_eq!(rel.sha256["a"].size, 1);
    }

    #[test]
    fn corrupt_or_truncated_is_an_error() {
        let good = format!("SHA256:\n {H1} 1 a\n");
        let s = signed(&good);
        // Cut before the signature block.
        let cut = &s[..s.find("-----BEGIN PGP SIGNATURE").unwrap()];
        assert!(parse(cut, "t").is_err());
        // Cut inside the armor header.
        assert!(parse("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256", "t").is_err());
        assert!(parse(&format!("SHA256:\n {H1} x a\n"), "t").is_err());
        assert!(parse("SHA256:\n abcd 1 a\n", "t").is_err());
        assert!(parse(&format!("SHA256:\n {H1} 1\n"), "t").is_err());
        assert!(parse(&format!("SHA256:\n {H1} 1 a b\n"), "t").is_err());
        assert!(parse("Origin: Debian\n", "t").is_err());
        assert!(parse("", "t").is_err());
        assert!(parse("\u{0}\u{1}garbage", "t").is_err());
    }
}
