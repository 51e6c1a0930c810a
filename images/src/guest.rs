//! The initramfs of each scenario: /init scripts and the file layout.

use std::collections::{BTreeMap, VecDeque};

use crate::cpio;
use crate::error::{Error, Result};

/// A shell function printing milliseconds since some fixed point: busybox
/// `date +%s%N` when the applet supports `%N` (it prints a literal `N`
/// otherwise), else /proc/uptime in centiseconds.
const NOW_MS: &str = r#"now_ms() {
    t=$(date +%s%N 2>/dev/null)
    case "$t" in
    ''|*[!0-9]*)
        read -r up rest </proc/uptime
        # "12.34": 1 is prepended to the fraction so "08" is not read as octal.
        echo $(( ${up%.*} * 1000 + (1${up#*.} - 100) * 10 )) ;;
    *) echo $(( t / 1000000 )) ;;
    esac
}
"#;

/// Mounts and busybox applet links, shared by every /init.
const PRELUDE: &str = "#!/bin/sh
/bin/busybox --install -s
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
";

/// With `rivet.irqs` on the kernel command line, also shows how interrupts reach the
/// harts: `/proc/interrupts` and what the AIA drivers said at probe time.
pub const BOOT_INIT: &str = "echo \"RIVET-BOOT-OK $(uname -r)\"
if grep -q rivet.irqs /proc/cmdline; then
    echo RIVET-IRQS-BEGIN
    cat /proc/interrupts
    dmesg | grep -i -e imsic -e aplic -e plic
    echo RIVET-IRQS-END
fi
poweroff -f
";

pub const SHELL_INIT: &str = "echo \"RIVET-SHELL-READY $(uname -r)\"
setsid cttyhack sh -l
poweroff -f
";

pub const NESTED_INNER_INIT: &str = "echo \"RIVET-NESTED-OK $(uname -r)\"
poweroff -f
";

/// Loads kvm.ko (after the modules it depends on, listed in `/modules/order`)
/// and runs Debian's QEMU with KVM on the same kernel. When KVM finds the AIA (the
/// outer machine has IMSICs), the inner machine has one too and two harts: KVM's
/// in-kernel AIA, with the outer IMSIC's guest interrupt files when there are any.
pub const NESTED_INIT: &str = "echo \"RIVET-NESTED-OUTER $(uname -r)\"
for m in $(cat /modules/order); do
    insmod /modules/$m || { echo \"RIVET-NESTED-FAIL insmod $m\"; poweroff -f; }
done
if [ ! -e /dev/kvm ]; then
    echo \"RIVET-NESTED-FAIL no /dev/kvm (does the CPU have the H extension?)\"
    poweroff -f
fi
inner=virt
if dmesg | grep -q 'AIA available'; then
    inner='virt,aia=aplic-imsic -smp 2'
fi
dmesg | grep 'kvm \\[' | sed 's/^/RIVET-NESTED-KVM /'
echo \"RIVET-NESTED-INNER $inner\"
export LD_LIBRARY_PATH=/usr/lib/riscv64-linux-gnu
qemu-system-riscv64 -M $inner -accel kvm -cpu host -m 256M -nographic -bios none \\
    -kernel /Image -initrd /inner.cpio.gz -append \"console=ttyS0\"
echo \"RIVET-NESTED-DONE rc=$?\"
poweroff -f
";

/// The workloads of GUESTS.md, timed by the guest itself.
pub const BENCH_INIT: &str = "bench() {
    name=$1; shift
    t0=$(now_ms)
    \"$@\"
    t1=$(now_ms)
    echo \"RIVET-BENCH name=$name ms=$((t1 - t0))\"
}
md5_64m() { dd if=/dev/zero bs=1048576 count=64 2>/dev/null | md5sum >/dev/null; }
arith() { i=0; s=0; while [ $i -lt 100000 ]; do s=$((s + i * i % 7)); i=$((i + 1)); done; }
gzip_bb() { for i in 1 2 3 4 5 6 7 8; do cat /bin/busybox; done | gzip -c >/dev/null; }
forkexec() { i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i + 1)); done; }
echo \"RIVET-BENCH-START $(uname -r)\"
bench md5sum-64m md5_64m
bench shell-arith arith
bench gzip gzip_bb
bench fork-exec-300 forkexec
echo RIVET-BENCH-DONE
poweroff -f
";

/// The full /init text of a scenario body.
pub fn init_script(body: &str, timed: bool) -> String {
    let mut s = PRELUDE.to_string();
    if timed {
        s.push_str(NOW_MS);
    }
    s.push_str(body);
    s
}

/// Builds a gzip'd initramfs: the busybox skeleton, /init, and `extra` files
/// (path -> (mode, data)); directories are created as needed.
pub fn initramfs(
    busybox: &[u8],
    init: &str,
    extra: &BTreeMap<String, (u32, Vec<u8>)>,
) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut w = cpio::Writer::new(gz);
    // Debian's merged /usr: /bin, /sbin and /lib point into /usr.
    for d in [
        "dev", "proc", "sys", "tmp", "root", "usr", "usr/bin", "usr/sbin", "usr/lib",
    ] {
        w.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        w.symlink(link, target)?;
    }
    w.char_dev("dev/console", 0o600, 5, 1)?;
    w.char_dev("dev/null", 0o666, 1, 3)?;
    w.file("usr/bin/busybox", 0o755, busybox)?;
    w.symlink("usr/bin/sh", "busybox")?;
    w.file("init", 0o755, init.as_bytes())?;
    let mut made: Vec<String> = ["usr", "usr/bin", "usr/sbin", "usr/lib"]
        .map(String::from)
        .to_vec();
    for (path, (mode, data)) in extra {
        let mut dir = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(p);
            if !made.contains(&dir) {
                w.dir(&dir, 0o755)?;
                made.push(dir.clone());
            }
        }
        w.file(path, *mode, data)?;
    }
    let gz = w.finish()?;
    gz.finish().map_err(|e| Error::io("initramfs", e))
}

/// Checks that `data` is a RISC-V Linux Image (Documentation/arch/riscv/boot-image-header.rst:
/// magic "RISCV\0\0\0" at 0x30, "RSC\x05" at 0x38).
pub fn check_image(data: &[u8], what: &str) -> Result<()> {
    let ok =
        data.get(0x30..0x38) == Some(b"RISCV\0\0\0") && data.get(0x38..0x3c) == Some(b"RSC\x05");
    if ok {
        Ok(())
    } else {
        Err(Error::format(what, "not a RISC-V Linux Image"))
    }
}

/// DT_NEEDED names and PT_INTERP of an ELF file.
fn elf_deps(data: &[u8], what: &str) -> Result<(Vec<String>, Option<String>)> {
    let elf =
        goblin::elf::Elf::parse(data).map_err(|e| Error::format(what, format!("bad ELF: {e}")))?;
    Ok((
        elf.libraries.iter().map(|s| s.to_string()).collect(),
        elf.interpreter.map(str::to_string),
    ))
}

/// A file name (or path) and its contents.
pub type NamedFile = (String, Vec<u8>);

/// The shared libraries `binary` needs, transitively: (soname, data), and the
/// program interpreter's path and data. `libs` maps file names (sonames and
/// other names) to contents, symlinks already followed.
pub fn library_closure(
    binary: &[u8],
    name: &str,
    libs: &BTreeMap<String, Vec<u8>>,
) -> Result<(Vec<NamedFile>, Option<NamedFile>)> {
    let (needed, interp) = elf_deps(binary, name)?;
    let interp = match interp {
        Some(path) => {
            let base = path.rsplit('/').next().unwrap_or(&path).to_string();
            let data = libs.get(&base).ok_or_else(|| Error::MissingLibrary {
                lib: path.clone(),
                by: name.to_string(),
            })?;
            Some((path, data.clone()))
        }
        None => None,
    };
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut queue: VecDeque<(String, String)> =
        needed.into_iter().map(|l| (l, name.to_string())).collect();
    while let Some((lib, by)) = queue.pop_front() {
        if out.iter().any(|(n, _)| *n == lib) {
            continue;
        }
        let data = libs.get(&lib).ok_or_else(|| Error::MissingLibrary {
            lib: lib.clone(),
            by,
        })?;
        let (more, _) = elf_deps(data, &lib)?;
        queue.extend(more.into_iter().map(|m| (m, lib.clone())));
        out.push((lib, data.clone()));
    }
    Ok((out, interp))
}

/// The `depends=` list of a kernel module's .modinfo section.
pub fn module_depends(ko: &[u8], what: &str) -> Result<Vec<String>> {
    let elf =
        goblin::elf::Elf::parse(ko).map_err(|e| Error::format(what, format!("bad ELF: {e}")))?;
    for sh in &elf.section_headers {
        if elf.shdr_strtab.get_at(sh.sh_name) != Some(".modinfo") {
            continue;
        }
        let start = usize::try_from(sh.sh_offset).unwrap_or(usize::MAX);
        let len = usize::try_from(sh.sh_size).unwrap_or(usize::MAX);
        let body = start
            .checked_add(len)
            .and_then(|end| ko.get(start..end))
            .ok_or_else(|| Error::format(what, ".modinfo outside the file"))?;
        for kv in body.split(|&b| b == 0) {
            if let Some(v) = kv.strip_prefix(b"depends=") {
                return Ok(String::from_utf8_lossy(v)
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect());
            }
        }
        return Ok(Vec::new());
    }
    Err(Error::format(
        what,
        "no .modinfo section (not a kernel module)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_layout() {
        let mut extra = BTreeMap::new();
        extra.insert(
            "usr/lib/riscv64-linux-gnu/libc.so.6".to_string(),
            (0o644, b"libc".to_vec()),
        );
        extra.insert("Image".to_string(), (0o644, b"img".to_vec()));
        let init = init_script(BOOT_INIT, false);
        let gz = initramfs(b"BUSYBOX", &init, &extra).unwrap();
        let raw = crate::archive::decompress("x.gz", &gz).unwrap();
        let e = cpio::read(&raw).unwrap();
        let get = |n: &str| {
            e.iter()
                .find(|e| e.name == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(get("init").data, init.as_bytes());
        assert_eq!(get("init").mode, cpio::S_IFREG | 0o755);
        assert_eq!(get("usr/bin/busybox").data, b"BUSYBOX");
        assert_eq!(get("bin").data, b"usr/bin");
        assert_eq!(get("dev/console").rdev_major, 5);
        assert_eq!(get("usr/lib/riscv64-linux-gnu").mode, cpio::S_IFDIR | 0o755);
        assert_eq!(get("usr/lib/riscv64-linux-gnu/libc.so.6").data, b"libc");
        // Directories precede their contents, exactly once.
        let dirs: Vec<_> = e
            .iter()
            .filter(|e| e.mode & 0o170000 == cpio::S_IFDIR)
            .map(|e| &e.name)
            .collect();
        let mut uniq = dirs.clone();
        uniq.dedup();
        assert_eq!(dirs.len(), uniq.len());
        assert!(
            init.starts_with("#!/bin/sh\n")
                && init.contains("RIVET-BOOT-OK")
                && init.contains("poweroff -f")
        );
    }

    #[test]
    fn scripts_carry_markers() {
        let b = init_script(BENCH_INIT, true);
        assert!(b.contains("now_ms()") && b.contains("RIVET-BENCH name="));
        for w in ["md5sum", "gzip", "/bin/true", "dd if=/dev/zero"] {
            assert!(b.contains(w), "{w}");
        }
        assert!(NESTED_INIT.contains("-accel kvm -cpu host -m 256M -nographic -bios none"));
        assert!(NESTED_INNER_INIT.contains("RIVET-NESTED-OK"));
        assert!(SHELL_INIT.contains("cttyhack"));
    }

    #[test]
    fn image_check() {
        let mut img = vec![0u8; 0x40];
        assert!(check_image(&img, "k").is_err());
        img[0x30..0x38].copy_from_slice(b"RISCV\0\0\0");
        img[0x38..0x3c].copy_from_slice(b"RSC\x05");
        check_image(&img, "k").unwrap();
        assert!(check_image(&img[..0x3a], "k").is_err());
    }

    /// A minimal ELF64 relocatable object with `.modinfo` holding `modinfo`.
    fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        let shstr = b"\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // ELFCLASS64
        f[5] = 1; // little endian
        f[6] = 1; // EV_CURRENT
        f[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        f[18..20].copy_from_slice(&243u16.to_le_bytes()); // EM_RISCV
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        f[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        f[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
        f[62..64].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
        let modinfo_off = f.len() as u64;
        f.extend_from_slice(modinfo);
        let shstr_off = f.len() as u64;
        f.extend_from_slice(shstr);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len() as u64;
        f[40..48].copy_from_slice(&shoff.to_le_bytes());
        let mut sh = |name: u32, ty: u32, off: u64, size: u64| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[48..56].copy_from_slice(&1u64.to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0);
        sh(1, 1, modinfo_off, modinfo.len() as u64); // PROGBITS
        sh(10, 3, shstr_off, shstr.len() as u64); // STRTAB
        f
    }

    #[test]
    fn module_dependencies_from_modinfo() {
        let ko = fake_module(b"license=GPL\0depends=irqbypass,foo-bar\0name=kvm\0");
        assert_eq!(
            module_depends(&ko, "kvm.ko").unwrap(),
            ["irqbypass", "foo-bar"]
        );
        let ko = fake_module(b"license=GPL\0depends=\0name=kvm\0");
        assert!(module_depends(&ko, "kvm.ko").unwrap().is_empty());
        // .modinfo pointing past the end of the file.
        let mut bad = fake_module(b"depends=x\0");
        let n = bad.len();
        bad[n - 128 + 24..n - 128 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(module_depends(&bad, "kvm.ko").is_err());
    }

    /// The host's own `true` and its libraries stand in for a riscv64 binary.
    #[test]
    fn library_closure_of_a_host_binary() {
        let Ok(bin) = std::fs::read("/usr/bin/true") else {
            eprintln!("*** SKIPPED: no /usr/bin/true on this host ***");
            return;
        };
        let (needed, interp) = elf_deps(&bin, "true").unwrap();
        if needed.is_empty() {
            eprintln!("*** SKIPPED: /usr/bin/true is statically linked ***");
            return;
        }
        let dirs = [
            "/lib64",
            "/lib",
            "/usr/lib",
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ];
        let mut libs = BTreeMap::new();
        let mut names = needed.clone();
        names.extend(
            interp
                .iter()
                .map(|p| p.rsplit('/').next().unwrap_or(p).to_string()),
        );
        while let Some(n) = names.pop() {
            if libs.contains_key(&n) {
                continue;
            }
            let Some(data) = dirs
                .iter()
                .find_map(|d| std::fs::read(format!("{d}/{n}")).ok())
            else {
                continue;
            };
            names.extend(elf_deps(&data, &n).unwrap().0);
            libs.insert(n, data);
        }
        let (got, got_interp) = library_closure(&bin, "true", &libs).unwrap();
        assert!(
            got.iter().any(|(n, _)| n == "libc.so.6"),
            "{:?}",
            got.iter().map(|g| &g.0).collect::<Vec<_>>()
        );
        assert_eq!(got_interp.map(|(p, _)| p), interp);
        let e = library_closure(&bin, "true", &BTreeMap::new()).unwrap_err();
        assert!(matches!(e, Error::MissingLibrary { .. }), "{e}");
    }

    #[test]
    fn elf_helpers_reject_garbage() {
        assert!(module_depends(b"not an elf", "kvm.ko").is_err());
        let libs = BTreeMap::new();
        assert!(library_closure(b"\x7fELF\x02\x01\x01", "qemu", &libs).is_err());
    }
}
