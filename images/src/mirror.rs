//! Choosing the Debian mirror: an explicit URL, else `RIVET_DEBIAN_MIRROR`, else
//! the first Debian archive in the host's apt sources.

use std::fs;
use std::path::Path;

use crate::deb822;
use crate::error::{Error, Result};

pub const ENV: &str = "RIVET_DEBIAN_MIRROR";

/// The mirror root to use, without a trailing slash.
pub fn choose(explicit: Option<&str>) -> Result<String> {
    let env = std::env::var(ENV).ok();
    let pick = explicit
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .or_else(|| env.filter(|s| !s.trim().is_empty()))
        .or_else(|| from_sources(&read_apt_sources(Path::new("/etc/apt"))));
    let url = pick.ok_or(Error::NoMirror)?;
    let url = url.trim().trim_end_matches('/').to_string();
    if ["http://", "https://", "file://"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        Ok(url)
    } else {
        Err(Error::BadUrl(url))
    }
}

/// The apt source files under `etc_apt`, in the order apt reads them:
/// `sources.list`, then `sources.list.d/*.list` and `*.sources` by name.
pub fn read_apt_sources(etc_apt: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let main = etc_apt.join("sources.list");
    if let Ok(t) = fs::read_to_string(&main) {
        files.push(("sources.list".to_string(), t));
    }
    let mut names: Vec<_> = fs::read_dir(etc_apt.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
        .collect();
    names.sort();
    for p in names {
        if let Ok(t) = fs::read_to_string(&p) {
            files.push((
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                t,
            ));
        }
    }
    files
}

/// The first http(s) URI of a `deb` source whose path ends in `/debian`
/// (so `debian-security` and third-party archives are skipped).
pub fn from_sources(files: &[(String, String)]) -> Option<String> {
    files.iter().find_map(|(name, text)| {
        if name.ends_with(".sources") {
            from_deb822(text)
        } else {
            from_one_line(text)
        }
    })
}

fn is_debian_archive(uri: &str) -> bool {
    (uri.starts_with("http://") || uri.starts_with("https://"))
        && uri.trim_end_matches('/').ends_with("/debian")
}

fn from_deb822(text: &str) -> Option<String> {
    // A malformed file is skipped, as apt would refuse it anyway.
    let stanzas = deb822::parse(text, "apt sources").ok()?;
    stanzas.iter().find_map(|st| {
        let enabled = st
            .get("Enabled")
            .is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        let deb = st
            .get("Types")
            .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        if !(enabled && deb) {
            return None;
        }
        st.get("URIs")?
            .split_whitespace()
            .find(|u| is_debian_archive(u))
            .map(str::to_string)
    })
}

fn from_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            return None;
        }
        let mut uri = words.next()?;
        if uri.starts_with('[') {
            // Options: `[arch=amd64 signed-by=...]`, possibly several words.
            let mut w = uri;
            while !w.ends_with(']') {
                w = words.next()?;
            }
            uri = words.next()?;
        }
        is_debian_archive(uri).then(|| uri.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, text: &str) -> (String, String) {
        (name.to_string(), text.to_string())
    }

    #[test]
    fn deb822_sources() {
        let files = [
            f(
                "a.sources",
                "Types: deb\nURIs: http://mirror.test/debian-security\nSuites: x\n\n\
                 Types: deb-src\nURIs: http://src.test/debian\n\n\
                 Enabled: no\nTypes: deb\nURIs: http://off.test/debian\n\n\
                 Types: deb deb-src\n# note\nURIs: ftp://old.test/debian https://m.test/debian/\n",
            ),
            f("b.sources", "Types: deb\nURIs: http://later.test/debian\n"),
        ];
        assert_eq!(
            from_sources(&files).as_deref(),
            Some("https://m.test/debian/")
        );
    }

    #[test]
    fn one_line_sources() {
        let files = [f(
            "sources.list",
            "# deb http://commented.test/debian sid main\n\
             deb-src http://src.test/debian sid main\n\
             deb [arch=riscv64 signed-by=/k.gpg] http://opt.test/debian sid main\n",
        )];
        assert_eq!(
            from_sources(&files).as_deref(),
            Some("http://opt.test/debian")
        );
        let none = [f(
            "sources.list",
            "deb http://x.test/ubuntu noble main\ndeb [broken\n",
        )];
        assert_eq!(from_sources(&none), None);
        assert_eq!(from_sources(&[]), None);
        // A malformed deb822 file yields nothing rather than an error.
        assert_eq!(from_sources(&[f("x.sources", " bad\n")]), None);
    }

    #[test]
    fn reads_apt_directory_in_order() {
        let d = std::env::temp_dir().join(format!("rivet-apt-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("sources.list.d")).unwrap();
        fs::write(
            d.join("sources.list.d/b.sources"),
            "Types: deb\nURIs: http://b.test/debian\n",
        )
        .unwrap();
        fs::write(
            d.join("sources.list.d/a.list"),
            "deb http://a.test/debian sid main\n",
        )
        .unwrap();
        fs::write(
            d.join("sources.list.d/c.list.disabled"),
            "deb http://c.test/debian sid main\n",
        )
        .unwrap();
        let files = read_apt_sources(&d);
        assert_eq!(files.len(), 2);
        assert_eq!(
            from_sources(&files).as_deref(),
            Some("http://a.test/debian")
        );
        fs::write(
            d.join("sources.list"),
            "deb http://main.test/debian sid main\n",
        )
        .unwrap();
        assert_eq!(
            from_sources(&read_apt_sources(&d)).as_deref(),
            Some("http://main.test/debian")
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn explicit_mirror_wins_and_is_checked() {
        assert_eq!(
            choose(Some("http://x.test/debian/")).unwrap(),
            "http://x.test/debian"
        );
        assert!(matches!(
            choose(Some("x.test/debian")),
            Err(Error::BadUrl(_))
        ));
        let msg = Error::NoMirror.to_string();
        assert!(msg.contains("--mirror URL") && msg.contains("RIVET_DEBIAN_MIRROR=URL"));
    }
}
