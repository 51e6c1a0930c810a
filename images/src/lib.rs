//! Builds Rivet's reference guests (see GUESTS.md in the project notes) from
//! Debian's riscv64 packages: OpenSBI, the Debian kernel, busybox and, for the
//! nested scenario, kvm.ko and Debian's QEMU with its shared libraries.
//!
//! `build` picks a mirror, fetches the suite's InRelease and Packages indexes
//! (checked by SHA-256), resolves the packages, downloads and checks the .debs,
//! extracts the few files needed and writes a gzip'd newc initramfs. Everything
//! lands in a cache keyed by package versions and init scripts, written
//! atomically, so a second build is instant and works offline.
//!
//! Not done yet: the OpenPGP signature of InRelease is not verified (the
//! checksums chain from InRelease down, so that is the one missing link).

pub mod ar;
pub mod archive;
pub mod cpio;
pub mod deb822;
mod error;
pub mod fetch;
pub mod guest;
pub mod inrelease;
pub mod mirror;
pub mod packages;
pub mod resolve;
pub mod version;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

pub use error::{Error, Result};

use archive::{Extracted, Payload};
use fetch::{join, sha256_hex, write_atomic, Fetcher};
use packages::{Index, Package};
use resolve::Resolution;

/// Bumped whenever the layout of built guests changes, to invalidate caches.
const BUILD_FORMAT: &str = "rivet-guest-v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Prints `RIVET-BOOT-OK <uname -r>` and powers off.
    Boot,
    /// An interactive shell on the console.
    Shell,
    /// Debian's QEMU with KVM inside the guest; the inner guest prints `RIVET-NESTED-OK`.
    Nested,
    /// Guest-timed workloads printing `RIVET-BENCH name=<n> ms=<t>`.
    Bench,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Boot,
        Scenario::Shell,
        Scenario::Nested,
        Scenario::Bench,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Boot => "boot",
            Scenario::Shell => "shell",
            Scenario::Nested => "nested",
            Scenario::Bench => "bench",
        }
    }

    /// The kernel command line the guest is meant to boot with.
    pub fn append(self) -> &'static str {
        "console=ttyS0 quiet"
    }

    fn init(self) -> String {
        match self {
            Scenario::Boot => guest::init_script(guest::BOOT_INIT, false),
            Scenario::Shell => guest::init_script(guest::SHELL_INIT, false),
            Scenario::Nested => guest::init_script(guest::NESTED_INIT, false),
            Scenario::Bench => guest::init_script(guest::BENCH_INIT, true),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("Unknown scenario {s:?}: use boot, shell, nested or bench"))
    }
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Mirror root URL; else `RIVET_DEBIAN_MIRROR`, else the host's apt sources.
    pub mirror: Option<String>,
    /// Directory to copy the finished guest into (it stays in the cache too).
    pub out: Option<PathBuf>,
    /// Debian suite, normally "sid".
    pub suite: String,
    /// Progress bars and status lines on stderr.
    pub progress: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            mirror: None,
            out: None,
            suite: "sid".to_string(),
            progress: false,
        }
    }
}

/// A bootable guest: run with `-bios firmware -kernel kernel -initrd initrd -append append`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    pub firmware: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub kernel_version: String,
    pub append: String,
}

/// The user cache directory: `$XDG_CACHE_HOME/rivet` or `~/.cache/rivet`.
pub fn cache_dir() -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    base.map(|b| b.join("rivet")).ok_or(Error::NoCacheDir)
}

/// Builds (or takes from the cache) the guest for `scenario`.
pub fn build(scenario: Scenario, opts: &BuildOptions) -> Result<Guest> {
    build_in(scenario, opts, &cache_dir()?)
}

/// [`build`] with an explicit cache directory.
pub fn build_in(scenario: Scenario, opts: &BuildOptions, cache: &Path) -> Result<Guest> {
    let mirror = match mirror::choose(opts.mirror.as_deref()) {
        Ok(m) => m,
        Err(e @ Error::NoMirror) => match last_built(cache, scenario) {
            Some(g) => {
                eprintln!(
                    "Warning: {e}; using the cached {scenario} guest ({})",
                    g.kernel_version
                );
                return finish(g, scenario, opts);
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let b = Builder {
        fetcher: Fetcher::new(opts.progress),
        mirror,
        suite: opts.suite.clone(),
        cache: cache.to_path_buf(),
        progress: opts.progress,
    };
    let guest = match b.resolution(scenario) {
        Ok(res) => b.guest(scenario, &res)?,
        Err(e) if e.is_network() => match last_built(cache, scenario) {
            Some(g) => {
                eprintln!(
                    "Warning: {e}; using the cached {scenario} guest ({})",
                    g.kernel_version
                );
                g
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    finish(guest, scenario, opts)
}

fn finish(guest: Guest, scenario: Scenario, opts: &BuildOptions) -> Result<Guest> {
    match &opts.out {
        Some(out) => copy_out(&guest, scenario, out),
        None => Ok(guest),
    }
}

/// The guest of the last successful build of `scenario`, if still complete.
fn last_built(cache: &Path, scenario: Scenario) -> Option<Guest> {
    let guests = cache.join("guests");
    let name = fs::read_to_string(guests.join(format!("{scenario}.last"))).ok()?;
    load_guest(&guests.join(name.trim()), scenario)
}

struct Builder {
    fetcher: Fetcher,
    mirror: String,
    suite: String,
    cache: PathBuf,
    progress: bool,
}

impl Builder {
    fn say(&self, msg: &str) {
        if self.progress {
            eprintln!("{msg}");
        }
    }

    fn dist_url(&self, path: &str) -> String {
        join(&self.mirror, &format!("dists/{}/{path}", self.suite))
    }

    /// Fetches InRelease and resolves the scenario's packages, reusing a
    /// resolution cached for the same index contents.
    fn resolution(&self, scenario: Scenario) -> Result<Resolution> {
        let url = self.dist_url("InRelease");
        let (text, _) = self.fetcher.get(&url, None)?;
        let rel = inrelease::parse(&String::from_utf8_lossy(&text), &url)?;
        let nested = scenario == Scenario::Nested;
        let arches = ["riscv64", "all"];
        let mut key = format!("{BUILD_FORMAT}\n{}\n{nested}\n", self.suite);
        for arch in arches {
            for ext in ["", ".xz", ".gz"] {
                if let Some(e) = rel.sha256.get(&format!("main/binary-{arch}/Packages{ext}")) {
                    key.push_str(&format!("{arch}{ext} {}\n", e.sha256));
                }
            }
        }
        let res_path = self
            .cache
            .join("resolved")
            .join(&sha256_hex(key.as_bytes())[..32]);
        if let Some(res) = fs::read_to_string(&res_path)
            .ok()
            .and_then(|t| load_resolution(&t))
        {
            return Ok(res);
        }
        let mut index = Index::default();
        for arch in arches {
            let text = self.index(&rel, &url, arch)?;
            index.add(
                &String::from_utf8_lossy(&text),
                &format!("main/binary-{arch}/Packages"),
            )?;
        }
        let res = resolve::resolve(&index, nested)?;
        write_atomic(&res_path, save_resolution(&res).as_bytes())?;
        Ok(res)
    }

    /// One decompressed Packages index. Tries .xz, then .gz, then plain, each
    /// also by hash when the archive offers it, until one matches InRelease (a
    /// mirror in the middle of a sync can serve a new index with an old InRelease).
    fn index(&self, rel: &inrelease::Release, rel_url: &str, arch: &str) -> Result<Vec<u8>> {
        let base = format!("main/binary-{arch}/Packages");
        let mut tried = Vec::new();
        let mut listed = false;
        for ext in [".xz", ".gz", ""] {
            let path = format!("{base}{ext}");
            let Some(entry) = rel.sha256.get(&path) else {
                continue;
            };
            listed = true;
            let cached = self
                .cache
                .join("indexes")
                .join(format!("{}{ext}", entry.sha256));
            if let Ok(data) = fs::read(&cached) {
                if sha256_hex(&data) == entry.sha256 {
                    if let Ok(text) = archive::decompress(&path, &data) {
                        return Ok(text);
                    }
                }
            }
            let mut urls = vec![self.dist_url(&path)];
            if rel.acquire_by_hash {
                urls.push(self.dist_url(&format!(
                    "main/binary-{arch}/by-hash/SHA256/{}",
                    entry.sha256
                )));
            }
            for url in urls {
                self.say(&format!("Fetching {url}"));
                let (data, hash) = match self.fetcher.get(&url, Some(entry.size)) {
                    Ok(x) => x,
                    Err(e @ Error::NotFound { .. }) => {
                        tried.push(e.to_string());
                        continue;
                    }
                    Err(Error::Http { source, .. })
                        if matches!(*source, ureq::Error::StatusCode(_)) =>
                    {
                        tried.push(format!("{url} ({source})"));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if hash != entry.sha256 {
                    tried.push(format!(
                        "{url} (SHA-256 {hash}, InRelease says {})",
                        entry.sha256
                    ));
                    continue;
                }
                match archive::decompress(&path, &data) {
                    Ok(text) => {
                        write_atomic(&cached, &data)?;
                        return Ok(text);
                    }
                    Err(e) => tried.push(format!("{url} ({e})")),
                }
            }
        }
        if !listed {
            return Err(Error::NotInRelease {
                release: rel_url.to_string(),
                path: base,
            });
        }
        Err(Error::IndexMismatch {
            what: format!("{base} of {}", self.suite),
            tried: tried.join("; "),
        })
    }

    /// Downloads a package into the cache (checked) and extracts files from it.
    fn extract(&self, pkg: &Package, want: &mut dyn FnMut(&str) -> bool) -> Result<Vec<Extracted>> {
        let file = pkg.filename.rsplit('/').next().unwrap_or(&pkg.filename);
        let dest = self.cache.join("debs").join(file);
        let url = join(&self.mirror, &pkg.filename);
        self.fetcher.download(&url, &dest, pkg.size, &pkg.sha256)?;
        let f = fs::File::open(&dest).map_err(|e| Error::io(&dest, e))?;
        archive::extract_deb(std::io::BufReader::new(f), file, want)
    }

    /// The one regular file of `pkg` whose path `matches`.
    fn extract_one(
        &self,
        pkg: &Package,
        desc: &str,
        matches: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<u8>> {
        let got = self.extract(pkg, &mut |p| matches(p))?;
        got.into_iter()
            .find_map(|e| match e.payload {
                Payload::File { data, .. } => Some(data),
                Payload::Symlink(_) => None,
            })
            .ok_or_else(|| Error::MissingFile {
                package: format!("{} {}", pkg.name, pkg.version),
                file: desc.to_string(),
            })
    }

    fn guest(&self, scenario: Scenario, res: &Resolution) -> Result<Guest> {
        let init = scenario.init();
        let mut key = format!(
            "{BUILD_FORMAT}\n{scenario}\n{}\n{init}\n",
            res.kernel_version
        );
        if scenario == Scenario::Nested {
            key.push_str(guest::NESTED_INNER_INIT);
        }
        for p in res.all() {
            key.push_str(&format!("{} {} {}\n", p.name, p.version, p.sha256));
        }
        let name = format!("{scenario}-{}", &sha256_hex(key.as_bytes())[..16]);
        let dir = self.cache.join("guests").join(&name);
        if let Some(g) = load_guest(&dir, scenario) {
            self.say(&format!("Using cached {scenario} guest {}", dir.display()));
            return Ok(g);
        }
        self.say(&format!(
            "Building the {scenario} guest in {}",
            dir.display()
        ));
        for p in res.all() {
            self.say(&format!("  {} {} ({})", p.name, p.version, p.arch));
        }
        let ver = res.kernel_version.clone();
        let firmware = self.extract_one(&res.firmware, "fw_dynamic.bin", &|p| {
            p.ends_with("riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")
                || p.ends_with("opensbi-riscv64-generic-fw_dynamic.bin")
        })?;
        let kernel_paths = [
            format!("usr/lib/modules/{ver}/vmlinuz"),
            format!("lib/modules/{ver}/vmlinuz"),
            format!("boot/vmlinuz-{ver}"),
        ];
        let mut image = self.extract_one(&res.kernel, &kernel_paths[0], &|p| {
            kernel_paths.iter().any(|k| k == p)
        })?;
        if image.starts_with(&[0x1f, 0x8b]) {
            image = archive::decompress("vmlinuz.gz", &image)?;
        }
        guest::check_image(&image, &format!("{} vmlinuz", res.kernel.name))?;
        let busybox = self.extract_one(&res.busybox, "usr/bin/busybox", &|p| {
            p == "usr/bin/busybox" || p == "bin/busybox"
        })?;
        let extra = match scenario {
            Scenario::Nested => self.nested_files(res, &busybox, &image)?,
            _ => BTreeMap::new(),
        };
        let initrd = guest::initramfs(&busybox, &init, &extra)?;
        let initrd_name = format!("{scenario}.cpio.gz");
        write_atomic(&dir.join("fw_dynamic.bin"), &firmware)?;
        write_atomic(&dir.join("Image"), &image)?;
        write_atomic(&dir.join(&initrd_name), &initrd)?;
        let mut manifest = format!("kernel_version={ver}\nappend={}\n", scenario.append());
        for p in res.all() {
            manifest.push_str(&format!("package={} {}\n", p.name, p.version));
        }
        // The manifest goes last: its presence marks a complete guest.
        write_atomic(&dir.join("guest.txt"), manifest.as_bytes())?;
        write_atomic(
            &self.cache.join("guests").join(format!("{scenario}.last")),
            name.as_bytes(),
        )?;
        load_guest(&dir, scenario)
            .ok_or_else(|| Error::format(dir.display().to_string(), "unreadable after build"))
    }

    /// kvm.ko and its dependencies, the kernel, the inner initramfs, and QEMU
    /// with the shared libraries it needs.
    fn nested_files(
        &self,
        res: &Resolution,
        busybox: &[u8],
        image: &[u8],
    ) -> Result<BTreeMap<String, (u32, Vec<u8>)>> {
        let mut files = BTreeMap::new();
        let modules = res
            .modules
            .as_ref()
            .ok_or_else(|| Error::MissingPackage("linux-modules".into()))?;
        let mod_root = format!("modules/{}/kernel/", res.kernel_version);
        let is_module = |p: &str| {
            p.contains(&mod_root)
                && [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
                    .iter()
                    .any(|s| p.ends_with(s))
        };
        let module_name = |p: &str| {
            let base = p.rsplit('/').next().unwrap_or(p);
            base.split(".ko").next().unwrap_or(base).replace('-', "_")
        };
        // Pass 1 lists all modules and takes kvm; more passes take its dependencies.
        let mut paths = BTreeMap::new();
        let mut wanted = vec!["kvm".to_string()];
        let mut order: Vec<(String, Vec<u8>)> = Vec::new();
        let mut loaded: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for _pass in 0..8 {
            let todo: Vec<String> = wanted
                .iter()
                .filter(|m| !loaded.contains_key(*m))
                .cloned()
                .collect();
            if todo.is_empty() {
                break;
            }
            let got = self.extract(modules, &mut |p| {
                if !is_module(p) {
                    return false;
                }
                let n = module_name(p);
                paths.insert(n.clone(), p.to_string());
                todo.contains(&n)
            })?;
            for e in got {
                let Payload::File { data, .. } = e.payload else {
                    continue;
                };
                let name = module_name(&e.path);
                let ko = if e.path.ends_with(".ko") {
                    data
                } else {
                    archive::decompress(&e.path, &data)?
                };
                let deps: Vec<String> = guest::module_depends(&ko, &e.path)?
                    .iter()
                    .map(|d| d.replace('-', "_"))
                    .collect();
                wanted.extend(deps.iter().cloned());
                loaded.insert(name.clone(), deps);
                order.push((name, ko));
            }
            for m in &todo {
                if !loaded.contains_key(m) {
                    return Err(Error::MissingFile {
                        package: format!("{} {}", modules.name, modules.version),
                        file: format!("{mod_root}.../{m}.ko*"),
                    });
                }
            }
        }
        // insmod order: dependencies first.
        let mut sorted: Vec<String> = Vec::new();
        fn visit(
            m: &str,
            deps: &BTreeMap<String, Vec<String>>,
            out: &mut Vec<String>,
            depth: usize,
        ) {
            if out.iter().any(|x| x == m) || depth > 64 {
                return;
            }
            for d in deps.get(m).into_iter().flatten() {
                visit(d, deps, out, depth + 1);
            }
            out.push(m.to_string());
        }
        visit("kvm", &loaded, &mut sorted, 0);
        for (name, ko) in order {
            files.insert(format!("modules/{name}.ko"), (0o644, ko));
        }
        let order_list: String = sorted.iter().map(|m| format!("{m}.ko\n")).collect();
        files.insert("modules/order".into(), (0o644, order_list.into_bytes()));
        files.insert("Image".into(), (0o644, image.to_vec()));
        let inner = guest::initramfs(
            busybox,
            &guest::init_script(guest::NESTED_INNER_INIT, false),
            &BTreeMap::new(),
        )?;
        files.insert("inner.cpio.gz".into(), (0o644, inner));

        let qemu_pkg = res
            .qemu
            .as_ref()
            .ok_or_else(|| Error::MissingPackage("qemu-system-riscv".into()))?;
        let qemu = self.extract_one(qemu_pkg, "usr/bin/qemu-system-riscv64", &|p| {
            p == "usr/bin/qemu-system-riscv64"
        })?;
        // Library files by name, symlinks followed within the package set.
        let mut raw: BTreeMap<String, Payload> = BTreeMap::new();
        for lib in &res.libraries {
            let got = self.extract(lib, &mut |p| {
                let in_libdir = [
                    "usr/lib/riscv64-linux-gnu/",
                    "lib/riscv64-linux-gnu/",
                    "usr/lib/",
                    "lib/",
                ]
                .iter()
                .any(|d| p.strip_prefix(d).is_some_and(|rest| !rest.contains('/')));
                in_libdir && p.contains(".so")
            })?;
            for e in got {
                let base = e.path.rsplit('/').next().unwrap_or(&e.path).to_string();
                raw.entry(base).or_insert(e.payload);
            }
        }
        let mut libs = BTreeMap::new();
        for name in raw.keys() {
            let mut cur = name.clone();
            for _ in 0..16 {
                match raw.get(&cur) {
                    Some(Payload::Symlink(t)) => {
                        cur = t.rsplit('/').next().unwrap_or(t).to_string()
                    }
                    Some(Payload::File { data, .. }) => {
                        libs.insert(name.clone(), data.clone());
                        break;
                    }
                    None => break,
                }
            }
        }
        let (needed, interp) = guest::library_closure(&qemu, "qemu-system-riscv64", &libs)?;
        self.say(&format!(
            "  qemu-system-riscv64 needs {} shared libraries",
            needed.len()
        ));
        for (soname, data) in needed {
            files.insert(format!("usr/lib/riscv64-linux-gnu/{soname}"), (0o755, data));
        }
        if let Some((path, data)) = interp {
            let p = path.trim_start_matches('/');
            let p = if p.starts_with("lib/") {
                format!("usr/{p}")
            } else {
                p.to_string()
            };
            files.insert(p, (0o755, data));
        }
        files.insert("usr/bin/qemu-system-riscv64".into(), (0o755, qemu));
        Ok(files)
    }
}

fn load_guest(dir: &Path, scenario: Scenario) -> Option<Guest> {
    let manifest = fs::read_to_string(dir.join("guest.txt")).ok()?;
    let field = |k: &str| {
        manifest
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(str::to_string)
    };
    let g = Guest {
        firmware: dir.join("fw_dynamic.bin"),
        kernel: dir.join("Image"),
        initrd: dir.join(format!("{scenario}.cpio.gz")),
        kernel_version: field("kernel_version")?,
        append: field("append")?,
    };
    [&g.firmware, &g.kernel, &g.initrd]
        .iter()
        .all(|p| p.is_file())
        .then_some(g)
}

fn copy_out(g: &Guest, scenario: Scenario, out: &Path) -> Result<Guest> {
    let copy = |src: &Path, name: &str| -> Result<PathBuf> {
        let dest = out.join(name);
        let data = fs::read(src).map_err(|e| Error::io(src, e))?;
        write_atomic(&dest, &data)?;
        Ok(dest)
    };
    Ok(Guest {
        firmware: copy(&g.firmware, "fw_dynamic.bin")?,
        kernel: copy(&g.kernel, "Image")?,
        initrd: copy(&g.initrd, &format!("{scenario}.cpio.gz"))?,
        kernel_version: g.kernel_version.clone(),
        append: g.append.clone(),
    })
}

/// One line per package: role, name, version, arch, filename, size, sha256.
fn save_resolution(r: &Resolution) -> String {
    let mut s = format!("kernel_version\t{}\n", r.kernel_version);
    let mut put = |role: &str, p: &Package| {
        s.push_str(&format!(
            "{role}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            p.name, p.version, p.arch, p.filename, p.size, p.sha256
        ));
    };
    put("firmware", &r.firmware);
    put("kernel", &r.kernel);
    put("busybox", &r.busybox);
    r.modules.iter().for_each(|p| put("modules", p));
    r.qemu.iter().for_each(|p| put("qemu", p));
    r.libraries.iter().for_each(|p| put("library", p));
    s
}

fn load_resolution(text: &str) -> Option<Resolution> {
    let mut kernel_version = None;
    let mut roles: BTreeMap<&str, Vec<Package>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["kernel_version", v] => kernel_version = Some(v.to_string()),
            [role, name, version, arch, filename, size, sha256] => {
                roles.entry(role).or_default().push(Package {
                    name: name.to_string(),
                    version: version.to_string(),
                    arch: arch.to_string(),
                    filename: filename.to_string(),
                    size: size.parse().ok()?,
                    sha256: sha256.to_string(),
                    depends: String::new(),
                    pre_depends: String::new(),
                    provides: String::new(),
                    section: String::new(),
                    multi_arch: String::new(),
                })
            }
            _ => return None,
        }
    }
    let mut one = |r: &str| roles.get_mut(r).and_then(|v| v.pop());
    Some(Resolution {
        firmware: one("firmware")?,
        kernel: one("kernel")?,
        busybox: one("busybox")?,
        modules: one("modules"),
        qemu: one("qemu"),
        libraries: roles.remove("library").unwrap_or_default(),
        kernel_version: kernel_version?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>().unwrap(), s);
        }
        assert!("nope".parse::<Scenario>().is_err());
    }

    #[test]
    fn resolution_round_trip() {
        let p = |n: &str| Package {
            name: n.into(),
            version: "1:2.0-1".into(),
            arch: "riscv64".into(),
            filename: format!("pool/main/x/{n}.deb"),
            size: 42,
            sha256: "ab".repeat(32),
            depends: String::new(),
            pre_depends: String::new(),
            provides: String::new(),
            section: String::new(),
            multi_arch: String::new(),
        };
        let r = Resolution {
            firmware: p("opensbi"),
            kernel: p("linux-binary-7"),
            kernel_version: "7.2+deb14-riscv64".into(),
            busybox: p("busybox-static"),
            modules: Some(p("linux-modules-7")),
            qemu: Some(p("qemu-system-riscv")),
            libraries: vec![p("libc6"), p("libz1")],
        };
        let back = load_resolution(&save_resolution(&r)).unwrap();
        assert_eq!(back.kernel_version, r.kernel_version);
        assert_eq!(back.all(), r.all());
        assert!(load_resolution("garbage").is_none());
        assert!(load_resolution("kernel_version\tx\n").is_none());
    }
}
