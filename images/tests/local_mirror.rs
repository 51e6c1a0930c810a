//! A tiny fake Debian archive served from a loopback HTTP server: exercises
//! fetching, checksum checks, the retry over compressions when an index does not
//! match InRelease, the cache (second build, offline build) and atomic writes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rivet_images::{build_in, cpio, fetch::sha256_hex, BuildOptions, Error, Scenario};

const VER: &str = "9.9.9+test-riscv64";

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    hits: Vec<String>,
}

struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            files,
            hits: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: a test makes a few dozen requests at most.
            for conn in listener.incoming().take(1000) {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    serve(c, &st);
                }
            }
        });
        Server {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/debian", self.port)
    }

    fn hits(&self, suffix: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.ends_with(suffix))
            .count()
    }

    fn set(&self, path: &str, data: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), data);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut c: TcpStream, state: &Mutex<State>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 65536 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let body = {
        let mut s = state.lock().unwrap();
        s.hits.push(path.clone());
        s.files.get(&path).cloned()
    };
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(&body);
}

fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
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
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A .deb with the given files in a gzip'd data.tar.
fn deb(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o755);
        b.append_data(&mut h, format!("./{p}"), *d).unwrap();
    }
    let t = b.into_inner().unwrap();
    ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", gz(b"")),
        ("data.tar.gz", gz(&t)),
    ])
}

fn fake_image() -> Vec<u8> {
    let mut img = vec![0u8; 4096];
    img[0x30..0x38].copy_from_slice(b"RISCV\0\0\0");
    img[0x38..0x3c].copy_from_slice(b"RSC\x05");
    img[0x100] = 0x5a;
    img
}

struct Archive {
    files: HashMap<String, Vec<u8>>,
    image: Vec<u8>,
    firmware: Vec<u8>,
}

/// A suite `sid` with the boot scenario's packages. The riscv64 Packages.xz
/// listed in InRelease does not match what is served (as during a mirror sync),
/// so the builder must fall back to Packages.gz.
fn archive() -> Archive {
    let image = fake_image();
    let firmware = b"OPENSBI-FW".to_vec();
    let debs = [
        (
            "opensbi",
            "1.9-1",
            "all",
            deb(&[(
                "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
                &firmware,
            )]),
            "",
        ),
        (
            "busybox-static",
            "1:1.38.0-3",
            "riscv64",
            deb(&[("usr/bin/busybox", b"BUSYBOX")]),
            "",
        ),
        (
            "linux-binary-9.9.9+test-riscv64",
            "9.9.9-1",
            "riscv64",
            deb(&[(&format!("usr/lib/modules/{VER}/vmlinuz"), &image)]),
            "",
        ),
        (
            "linux-image-9.9.9+test-riscv64",
            "9.9.9-1",
            "riscv64",
            deb(&[]),
            "Depends: initramfs-tools, linux-binary-9.9.9+test-riscv64 (= 9.9.9-1)\n",
        ),
        (
            "linux-image-riscv64",
            "9.9.9-1",
            "riscv64",
            deb(&[]),
            "Depends: linux-image-9.9.9+test-riscv64 (= 9.9.9-1)\n",
        ),
    ];
    let mut files = HashMap::new();
    let (mut rv, mut all) = (String::new(), String::new());
    for (name, ver, arch, data, extra) in debs {
        let filename = format!("pool/main/{name}_{ver}_{arch}.deb");
        let st = format!(
            "Package: {name}\nVersion: {ver}\nArchitecture: {arch}\n{extra}Filename: {filename}\nSize: {}\nSHA256: {}\n\n",
            data.len(),
            sha256_hex(&data)
        );
        if arch == "all" { &mut all } else { &mut rv }.push_str(&st);
        files.insert(format!("/debian/{filename}"), data);
    }
    let mut sums = String::new();
    let mut list = |path: &str, data: &[u8]| {
        sums.push_str(&format!(" {} {} {path}\n", sha256_hex(data), data.len()));
    };
    let stale_xz = b"\xfd7zXZ\0 an older index".to_vec();
    list(
        "main/binary-riscv64/Packages.xz",
        b"the index InRelease describes",
    );
    list("main/binary-riscv64/Packages.gz", &gz(rv.as_bytes()));
    list("main/binary-riscv64/Packages", rv.as_bytes());
    list("main/binary-all/Packages", all.as_bytes());
    let inrelease = format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Test\nSuite: unstable\n\
         Acquire-By-Hash: yes\nSHA256:\n{sums}-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n"
    );
    let d = "/debian/dists/sid";
    files.insert(format!("{d}/InRelease"), inrelease.into_bytes());
    files.insert(format!("{d}/main/binary-riscv64/Packages.xz"), stale_xz);
    files.insert(
        format!("{d}/main/binary-riscv64/Packages.gz"),
        gz(rv.as_bytes()),
    );
    files.insert(format!("{d}/main/binary-riscv64/Packages"), rv.into_bytes());
    files.insert(format!("{d}/main/binary-all/Packages"), all.into_bytes());
    Archive {
        files,
        image,
        firmware,
    }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rivet-mirror-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(mirror: String) -> BuildOptions {
    BuildOptions {
        mirror: Some(mirror),
        out: None,
        suite: "sid".into(),
        progress: false,
    }
}

/// Every file under `dir`, relative.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn builds_from_a_local_mirror_with_retry_and_cache() {
    let a = archive();
    let srv = Server::start(a.files.clone());
    let cache = tmp("build");
    let g = build_in(Scenario::Boot, &opts(srv.url()), &cache).unwrap();

    // The stale .xz was tried (also by hash, absent here), then .gz matched.
    assert_eq!(srv.hits("binary-riscv64/Packages.xz"), 1);
    assert_eq!(
        srv.hits(&format!(
            "by-hash/SHA256/{}",
            sha256_hex(b"the index InRelease describes")
        )),
        1
    );
    assert_eq!(srv.hits("binary-riscv64/Packages.gz"), 1);
    assert_eq!(srv.hits("binary-riscv64/Packages"), 0);

    assert_eq!(g.kernel_version, VER);
    assert_eq!(g.append, "console=ttyS0 quiet");
    assert_eq!(std::fs::read(&g.kernel).unwrap(), a.image);
    assert_eq!(std::fs::read(&g.firmware).unwrap(), a.firmware);
    let raw =
        rivet_images::archive::decompress("x.gz", &std::fs::read(&g.initrd).unwrap()).unwrap();
    let entries = cpio::read(&raw).unwrap();
    let init = entries.iter().find(|e| e.name == "init").expect("/init");
    assert!(String::from_utf8_lossy(&init.data).contains("RIVET-BOOT-OK"));
    assert_eq!(
        entries
            .iter()
            .find(|e| e.name == "usr/bin/busybox")
            .unwrap()
            .data,
        b"BUSYBOX"
    );
    // No temporary files are left behind.
    assert!(
        tree(&cache).iter().all(|f| !f.contains(".tmp.")),
        "{:?}",
        tree(&cache)
    );

    // Second build: the same index gives the cached guest without any download.
    let debs_before = srv.hits(".deb");
    let again = build_in(Scenario::Boot, &opts(srv.url()), &cache).unwrap();
    assert_eq!(again, g);
    assert_eq!(srv.hits(".deb"), debs_before);
    assert_eq!(srv.hits("Packages.gz"), 1);

    // Offline: an unreachable mirror falls back to the cached guest...
    let port = srv.port;
    drop(srv);
    let offline = build_in(
        Scenario::Boot,
        &opts(format!("http://127.0.0.1:{port}/debian")),
        &cache,
    )
    .unwrap();
    assert_eq!(offline, g);
    // ...but only for a scenario that was built before.
    let e = build_in(
        Scenario::Bench,
        &opts(format!("http://127.0.0.1:{port}/debian")),
        &cache,
    )
    .unwrap_err();
    assert!(e.is_network(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{port}/debian/dists/sid/InRelease")),
        "{e}"
    );

    // --out copies the guest.
    let srv = Server::start(a.files.clone());
    let out = cache.join("out");
    let copied = build_in(
        Scenario::Boot,
        &BuildOptions {
            out: Some(out.clone()),
            ..opts(srv.url())
        },
        &cache,
    )
    .unwrap();
    assert_eq!(copied.kernel, out.join("Image"));
    assert_eq!(copied.initrd, out.join("boot.cpio.gz"));
    assert_eq!(
        std::fs::read(&copied.initrd).unwrap(),
        std::fs::read(&g.initrd).unwrap()
    );
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn bad_package_checksum_names_the_url_and_leaves_no_file() {
    let a = archive();
    let srv = Server::start(a.files.clone());
    let path = "/debian/pool/main/busybox-static_1:1.38.0-3_riscv64.deb";
    let mut corrupt = a.files[path].clone();
    let n = corrupt.len();
    corrupt[n - 5] ^= 1;
    srv.set(path, corrupt);
    let cache = tmp("badsum");
    let e = build_in(Scenario::Boot, &opts(srv.url()), &cache).unwrap_err();
    match &e {
        Error::Checksum { what, .. } => assert!(
            what.ends_with("busybox-static_1:1.38.0-3_riscv64.deb"),
            "{e}"
        ),
        other => panic!("expected a checksum error, got {other}"),
    }
    let files = tree(&cache);
    assert!(
        files
            .iter()
            .all(|f| !f.contains("busybox") && !f.contains(".tmp.")),
        "{files:?}"
    );
    assert!(files.iter().all(|f| !f.starts_with("guests")), "{files:?}");
    // Fixed on the mirror: the next build succeeds in the same cache.
    srv.set(path, a.files[path].clone());
    build_in(Scenario::Boot, &opts(srv.url()), &cache).unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn index_matching_in_no_compression_is_a_mid_sync_error() {
    let a = archive();
    let srv = Server::start(a.files.clone());
    for ext in [".gz", ""] {
        srv.set(
            &format!("/debian/dists/sid/main/binary-riscv64/Packages{ext}"),
            b"changed".to_vec(),
        );
    }
    let cache = tmp("midsync");
    let e = build_in(Scenario::Boot, &opts(srv.url()), &cache).unwrap_err();
    assert!(matches!(e, Error::IndexMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("mid-sync") && msg.contains("Packages.gz") && msg.contains("Packages.xz"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn file_urls_work_as_mirrors() {
    let a = archive();
    let root = tmp("filemirror");
    for (p, d) in &a.files {
        let dest = root.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, d).unwrap();
    }
    let cache = root.join("cache");
    let g = build_in(
        Scenario::Shell,
        &opts(format!("file://{}/debian", root.display())),
        &cache,
    )
    .unwrap();
    assert_eq!(std::fs::read(&g.kernel).unwrap(), a.image);
    assert!(g.initrd.ends_with("shell.cpio.gz"));
    std::fs::remove_dir_all(&root).unwrap();
}
