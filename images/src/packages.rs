//! A `Packages` index (deb822 stanzas, one per binary package) reduced to the
//! fields needed to resolve and fetch packages.

use std::collections::HashMap;

use crate::deb822;
use crate::error::{Error, Result};
use crate::version;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Path of the .deb relative to the mirror root.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub depends: String,
    pub pre_depends: String,
    pub provides: String,
    pub section: String,
    pub multi_arch: String,
}

impl Package {
    /// Depends then Pre-Depends relations, each a list of alternative names.
    pub fn relations(&self) -> Vec<Vec<String>> {
        let mut r = parse_relations(&self.pre_depends);
        r.extend(parse_relations(&self.depends));
        r
    }

    /// A shared-library package by Debian Policy 8.1 (Section libs, co-installable
    /// across architectures).
    pub fn is_library(&self) -> bool {
        let section = self.section.rsplit('/').next().unwrap_or("");
        section == "libs" && self.multi_arch == "same"
    }
}

/// Parses a relation field (`a (>= 1) | b:any, c [riscv64]`) into alternatives,
/// keeping only package names: versions and architecture qualifiers are not
/// needed to pick packages from one consistent index.
pub fn parse_relations(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|rel| {
            rel.split('|')
                .filter_map(|alt| {
                    let name = alt.split_whitespace().next()?;
                    let name = name.split(['(', '[', '<']).next().unwrap_or("");
                    let name = name.split(':').next().unwrap_or("");
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|alts| !alts.is_empty())
        .collect()
}

/// Packages by name, the highest version kept, with virtual names from Provides.
#[derive(Debug, Default)]
pub struct Index {
    packages: HashMap<String, Package>,
    providers: HashMap<String, Vec<String>>,
}

impl Index {
    /// Adds every stanza of a Packages file; `what` names it in errors.
    pub fn add(&mut self, text: &str, what: &str) -> Result<()> {
        deb822::for_each(text, what, |st| {
            let need = |f: &str| {
                st.get(f)
                    .ok_or_else(|| Error::parse(what, st.line, format!("stanza has no {f} field")))
            };
            let size = need("Size")?;
            let sha256 = need("SHA256")?;
            if sha256.len() != 64 || !sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::parse(what, st.line, "bad SHA256 value"));
            }
            let pkg = Package {
                name: need("Package")?.to_string(),
                version: need("Version")?.to_string(),
                arch: st.get("Architecture").unwrap_or("").to_string(),
                filename: need("Filename")?.to_string(),
                size: size
                    .parse()
                    .map_err(|_| Error::parse(what, st.line, "bad Size value"))?,
                sha256: sha256.to_ascii_lowercase(),
                depends: st.get("Depends").unwrap_or("").to_string(),
                pre_depends: st.get("Pre-Depends").unwrap_or("").to_string(),
                provides: st.get("Provides").unwrap_or("").to_string(),
                section: st.get("Section").unwrap_or("").to_string(),
                multi_arch: st.get("Multi-Arch").unwrap_or("").to_string(),
            };
            if pkg.filename.contains("..") || pkg.filename.starts_with('/') {
                return Err(Error::parse(what, st.line, "Filename escapes the mirror"));
            }
            self.insert(pkg);
            Ok(())
        })
    }

    fn insert(&mut self, pkg: Package) {
        if let Some(old) = self.packages.get(&pkg.name) {
            if version::compare(&pkg.version, &old.version).is_le() {
                return;
            }
        }
        for alts in parse_relations(&pkg.provides) {
            for v in alts {
                let list = self.providers.entry(v).or_default();
                if !list.contains(&pkg.name) {
                    list.push(pkg.name.clone());
                }
            }
        }
        self.packages.insert(pkg.name.clone(), pkg);
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The package of exactly this name.
    pub fn get(&self, name: &str) -> Option<&Package> {
        self.packages.get(name)
    }

    /// The package of this name, or the first one that provides it.
    pub fn find(&self, name: &str) -> Option<&Package> {
        self.get(name).or_else(|| {
            self.providers
                .get(name)?
                .iter()
                .find_map(|p| self.packages.get(p))
        })
    }

    /// Like [`Index::get`] but an error naming the package when absent.
    pub fn require(&self, name: &str) -> Result<&Package> {
        self.get(name)
            .ok_or_else(|| Error::MissingPackage(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "d7bc34339ac19a25599689436694055bab8220e410467268df3ca059e828510c";

    fn stanza(name: &str, ver: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {ver}\nArchitecture: riscv64\n{extra}\
             Filename: pool/main/{name}_{ver}.deb\nSize: 10\nSHA256: {H}\nSection: libs\n\
             Description: x\n long\n\n"
        )
    }

    #[test]
    fn relations() {
        let r = parse_relations("a (>= 1), b:any | c [riscv64], d (<< 2) <!nocheck>,, ");
        assert_eq!(r, vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
        assert!(parse_relations("").is_empty());
    }

    #[test]
    fn index_keeps_highest_version_and_provides() {
        let mut idx = Index::default();
        let text = stanza(
            "libfoo1",
            "1.0-1",
            "Multi-Arch: same\nProvides: libfoo-any (= 1)\n",
        ) + &stanza("libfoo1", "1.0-2", "Multi-Arch: same\n")
            + &stanza("libfoo1", "1.0~rc1-1", "")
            + &stanza(
                "app",
                "2",
                "Depends: libfoo1 (>= 1), x | y\nPre-Depends: libc6\n",
            );
        idx.add(&text, "Packages").unwrap();
        assert_eq!(idx.len(), 2);
        let foo = idx.get("libfoo1").unwrap();
        assert_eq!(foo.version, "1.0-2");
        assert_eq!(foo.size, 10);
        assert!(foo.is_library());
        assert!(!idx.get("app").unwrap().is_library());
        assert_eq!(idx.find("libfoo-any").unwrap().name, "libfoo1");
        assert!(idx.find("nothing").is_none());
        assert!(matches!(
            idx.require("nothing"),
            Err(Error::MissingPackage(_))
        ));
        assert_eq!(
            idx.get("app").unwrap().relations(),
            vec![vec!["libc6"], vec!["libfoo1"], vec!["x", "y"]]
        );
    }

    #[test]
    fn corrupt_stanzas_are_errors() {
        let mut idx = Index::default();
        assert!(idx.add("Package: a\nVersion: 1\n", "t").is_err());
        let bad_size = stanza("a", "1", "").replace("Size: 10", "Size: ten");
        assert!(idx.add(&bad_size, "t").is_err());
        let bad_hash = stanza("a", "1", "").replace(H, "zz");
        assert!(idx.add(&bad_hash, "t").is_err());
        let escape = stanza("a", "1", "").replace("Filename: pool", "Filename: ../pool");
        assert!(idx.add(&escape, "t").is_err());
        // A Packages file cut mid-stanza: the stanza lacks required fields.
        let full = stanza("a", "1", "");
        let cut = &full[..full.find("Size:").unwrap()];
        assert!(matches!(idx.add(cut, "t"), Err(Error::Parse { .. })));
        assert!(idx.is_empty());
    }
}
