//! Picks the packages a scenario needs from the Packages index.
//!
//! The kernel chain in Debian (7.x): `linux-image-riscv64` (metapackage) depends
//! on `linux-image-<ver>`, which depends on `linux-binary-<ver>` (ships
//! `usr/lib/modules/<ver>/vmlinuz`) and `linux-modules-<ver>` (the modules).
//! Older kernels ship both in `linux-image-<ver>` itself; both layouts work.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::error::{Error, Result};
use crate::packages::{Index, Package};

/// Everything to download for one scenario.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub firmware: Package,
    /// The package that ships the kernel Image.
    pub kernel: Package,
    /// `uname -r` of that kernel, e.g. `7.2.13+deb14-riscv64`.
    pub kernel_version: String,
    pub busybox: Package,
    /// The package that ships kvm.ko (nested only).
    pub modules: Option<Package>,
    /// `qemu-system-riscv` (nested only).
    pub qemu: Option<Package>,
    /// Shared-library closure of qemu (nested only), sorted by name.
    pub libraries: Vec<Package>,
}

impl Resolution {
    /// Every package, for cache keys and reports.
    pub fn all(&self) -> Vec<&Package> {
        let mut v = vec![&self.firmware, &self.kernel, &self.busybox];
        v.extend(self.modules.iter());
        v.extend(self.qemu.iter());
        v.extend(self.libraries.iter());
        v
    }
}

pub const KERNEL_META: &str = "linux-image-riscv64";

/// Resolves the packages for a guest; `nested` adds modules, qemu and libraries.
pub fn resolve(index: &Index, nested: bool) -> Result<Resolution> {
    let firmware = index.require("opensbi")?.clone();
    let busybox = index.require("busybox-static")?.clone();
    let meta = index.require(KERNEL_META)?;
    let image = first_dep_with_prefix(meta, "linux-image-")
        .and_then(|n| index.get(&n))
        .ok_or_else(|| {
            Error::MissingPackage(format!(
                "linux-image-<version> (a Depends of {KERNEL_META})"
            ))
        })?;
    let kernel_version = image
        .name
        .strip_prefix("linux-image-")
        .unwrap_or(&image.name)
        .trim_end_matches("-unsigned")
        .to_string();
    let kernel = first_dep_with_prefix(image, "linux-binary-")
        .and_then(|n| index.get(&n))
        .or_else(|| index.get(&format!("linux-binary-{kernel_version}")))
        .unwrap_or(image)
        .clone();
    let (mut modules, mut qemu, mut libraries) = (None, None, Vec::new());
    if nested {
        modules = Some(
            first_dep_with_prefix(image, "linux-modules-")
                .and_then(|n| index.get(&n))
                .or_else(|| index.get(&format!("linux-modules-{kernel_version}")))
                .unwrap_or(image)
                .clone(),
        );
        let q = index.require("qemu-system-riscv")?;
        libraries = library_closure(index, q);
        qemu = Some(q.clone());
    }
    Ok(Resolution {
        firmware,
        kernel,
        kernel_version,
        busybox,
        modules,
        qemu,
        libraries,
    })
}

fn first_dep_with_prefix(pkg: &Package, prefix: &str) -> Option<String> {
    pkg.relations()
        .into_iter()
        .flatten()
        .find(|n| n.starts_with(prefix) && !n.ends_with("-dbg"))
}

/// The shared-library packages reachable from `root` through Pre-Depends and
/// Depends, taking per relation the first alternative that exists (directly or
/// through Provides). Only library packages are followed: data, daemons and
/// tools a library merely depends on are not needed to run a binary.
pub fn library_closure(index: &Index, root: &Package) -> Vec<Package> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    let mut queue = VecDeque::from([root]);
    seen.insert(root.name.clone());
    while let Some(pkg) = queue.pop_front() {
        for alts in pkg.relations() {
            let Some(dep) = alts.iter().find_map(|a| index.find(a)) else {
                continue;
            };
            if !dep.is_library() || !seen.insert(dep.name.clone()) {
                continue;
            }
            out.insert(dep.name.clone(), dep.clone());
            queue.push_back(dep);
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "d7bc34339ac19a25599689436694055bab8220e410467268df3ca059e828510c";

    fn st(name: &str, section: &str, ma: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: 1\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {H}\n\
             Section: {section}\nMulti-Arch: {ma}\n{extra}\n"
        )
    }

    fn index(text: &str) -> Index {
        let mut idx = Index::default();
        idx.add(text, "t").unwrap();
        idx
    }

    fn base() -> String {
        st("opensbi", "misc", "foreign", "")
            + &st("busybox-static", "shells", "", "")
            + &st(
                "linux-image-riscv64",
                "kernel",
                "",
                "Depends: linux-base-riscv64 (= 1), linux-image-7.2+deb14-riscv64 (= 1)\n",
            )
    }

    #[test]
    fn split_kernel_packages() {
        let text = base()
            + &st(
                "linux-image-7.2+deb14-riscv64",
                "kernel",
                "",
                "Depends: dracut | initramfs-tools, linux-binary-7.2+deb14-riscv64 (= 1), \
                 linux-modules-7.2+deb14-riscv64 (= 1)\n",
            )
            + &st("linux-binary-7.2+deb14-riscv64", "kernel", "", "")
            + &st("linux-modules-7.2+deb14-riscv64", "kernel", "", "")
            + &st(
                "qemu-system-riscv",
                "otherosfs",
                "foreign",
                "Depends: libglib2.0-0t64 (>= 2), systemd, qemu-system-data, libvirt | libfoo-virtual\n",
            )
            + &st("libglib2.0-0t64", "libs", "same", "Depends: libc6, libffi8\n")
            + &st("libc6", "libs", "same", "")
            + &st("libffi8", "libs", "same", "Pre-Depends: libc6\n")
            + &st("libbar1", "libs", "same", "Provides: libfoo-virtual\nDepends: libc6\n")
            + &st("systemd", "admin", "foreign", "Depends: libsystemd-shared\n")
            + &st("libsystemd-shared", "libs", "same", "")
            + &st("qemu-system-data", "otherosfs", "foreign", "");
        let idx = index(&text);
        let r = resolve(&idx, false).unwrap();
        assert_eq!(r.kernel.name, "linux-binary-7.2+deb14-riscv64");
        assert_eq!(r.kernel_version, "7.2+deb14-riscv64");
        assert!(r.modules.is_none() && r.qemu.is_none() && r.libraries.is_empty());
        let r = resolve(&idx, true).unwrap();
        assert_eq!(r.modules.unwrap().name, "linux-modules-7.2+deb14-riscv64");
        let libs: Vec<_> = r.libraries.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(libs, ["libbar1", "libc6", "libffi8", "libglib2.0-0t64"]);
    }

    #[test]
    fn kernel_and_modules_in_image_package() {
        let text = base() + &st("linux-image-7.2+deb14-riscv64", "kernel", "", "");
        let idx = index(&text);
        let r = resolve(&idx, false).unwrap();
        assert_eq!(r.kernel.name, "linux-image-7.2+deb14-riscv64");
        // Nested also needs qemu, which this index lacks.
        assert!(
            matches!(resolve(&idx, true), Err(Error::MissingPackage(n)) if n == "qemu-system-riscv")
        );
    }

    #[test]
    fn missing_packages_are_named() {
        let idx = index(&st("opensbi", "misc", "", ""));
        assert!(
            matches!(resolve(&idx, false), Err(Error::MissingPackage(n)) if n == "busybox-static")
        );
        let idx = index(&base());
        assert!(
            matches!(resolve(&idx, false), Err(Error::MissingPackage(n)) if n.contains("linux-image-<version>"))
        );
    }
}
