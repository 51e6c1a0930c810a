//! Downloads from the mirror (http://, https:// or file://), hashing as it reads,
//! and writes results atomically.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Joins a mirror root and a path inside it.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

pub struct Fetcher {
    agent: ureq::Agent,
    progress: bool,
}

impl Fetcher {
    pub fn new(progress: bool) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .user_agent(concat!("rivet-images/", env!("CARGO_PKG_VERSION")))
            .build();
        Fetcher {
            agent: config.into(),
            progress,
        }
    }

    /// Opens a URL for reading; the length when known.
    fn open(&self, url: &str, expected_size: Option<u64>) -> Result<(Box<dyn Read>, Option<u64>)> {
        if let Some(path) = url.strip_prefix("file://") {
            let f = File::open(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::NotFound {
                    url: url.to_string(),
                },
                _ => Error::Transfer {
                    url: url.to_string(),
                    source: e,
                },
            })?;
            let len = f.metadata().ok().map(|m| m.len());
            return Ok((Box::new(f), len));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::BadUrl(url.to_string()));
        }
        // A whole-body deadline scaled to the size (at least 64 KiB/s) rather
        // than none, so a stalled transfer ends.
        let body_timeout = Duration::from_secs(120 + expected_size.unwrap_or(0) / 65536);
        let resp = self
            .agent
            .get(url)
            .config()
            .timeout_recv_body(Some(body_timeout))
            .build()
            .call()
            .map_err(|e| match e {
                ureq::Error::StatusCode(404 | 410) => Error::NotFound {
                    url: url.to_string(),
                },
                e => Error::Http {
                    url: url.to_string(),
                    source: Box::new(e),
                },
            })?;
        let len = resp.body().content_length();
        Ok((Box::new(resp.into_body().into_reader()), len))
    }

    /// Fetches a URL into memory, returning the bytes and their SHA-256.
    pub fn get(&self, url: &str, expected_size: Option<u64>) -> Result<(Vec<u8>, String)> {
        let mut buf = Vec::new();
        let hash = self.stream(url, expected_size, &mut buf)?;
        Ok((buf, hash))
    }

    /// Downloads `url` to `dest` atomically, checking size and SHA-256. A file
    /// already at `dest` with the right hash is kept without a download.
    pub fn download(&self, url: &str, dest: &Path, size: u64, sha256: &str) -> Result<()> {
        if let Ok(mut f) = File::open(dest) {
            let mut h = Sha256::new();
            if io::copy(&mut f, &mut HashWriter(&mut h)).is_ok() && hex(&h.finalize()) == sha256 {
                return Ok(());
            }
        }
        let (hash, written) = write_atomic_with(dest, |f| {
            let mut counted = CountWriter { inner: f, n: 0 };
            let hash = self.stream(url, Some(size), &mut counted)?;
            Ok((hash, counted.n))
        })?;
        if hash != sha256 || written != size {
            let _ = fs::remove_file(dest);
            return Err(Error::Checksum {
                what: url.to_string(),
                expected: format!("{sha256} ({size} bytes)"),
                actual: format!("{hash} ({written} bytes)"),
            });
        }
        Ok(())
    }

    /// Copies a URL's body into `out`, hashing it; shows a progress bar.
    fn stream(&self, url: &str, expected_size: Option<u64>, out: &mut dyn Write) -> Result<String> {
        let (mut r, len) = self.open(url, expected_size)?;
        let bar = self.progress.then(|| {
            let bar = indicatif::ProgressBar::new(expected_size.or(len).unwrap_or(0));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:40!} {bytes:>10}/{total_bytes:<10} {bar:30} {bytes_per_sec:>12}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
            bar
        });
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Transfer {
                        url: url.to_string(),
                        source: e,
                    })
                }
            };
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| Error::Transfer {
                url: url.to_string(),
                source: e,
            })?;
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(hex(&h.finalize()))
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct CountWriter<'a> {
    inner: &'a mut File,
    n: u64,
}

impl Write for CountWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A temporary name beside `dest`, unique within this host.
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(".{name}.tmp.{}.{seq}", std::process::id()))
}

/// Creates `dest` atomically: `fill` writes a temporary file beside it, which is
/// renamed over `dest` only when `fill` and the sync succeed; on failure the
/// temporary file is removed and `dest` is untouched.
pub fn write_atomic_with<T>(dest: &Path, fill: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = temp_path(dest);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let v = fill(&mut f)?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
        Ok(v)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub fn write_atomic(dest: &Path, data: &[u8]) -> Result<()> {
    write_atomic_with(dest, |f| f.write_all(data).map_err(|e| Error::io(dest, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rivet-fetch-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_leaves_nothing_on_failure() {
        let d = tmpdir("atomic");
        let dest = d.join("out.bin");
        write_atomic(&dest, b"one").unwrap();
        let r: Result<()> = write_atomic_with(&dest, |f| {
            f.write_all(b"half").unwrap();
            Err(Error::format("test", "fail midway"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.bin"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_urls_and_checksums() {
        let d = tmpdir("file");
        let src = d.join("src.deb");
        fs::write(&src, b"payload").unwrap();
        let url = format!("file://{}", src.display());
        let f = Fetcher::new(false);
        let (data, hash) = f.get(&url, None).unwrap();
        assert_eq!(data, b"payload");
        assert_eq!(hash, sha256_hex(b"payload"));
        let dest = d.join("cache/x.deb");
        f.download(&url, &dest, 7, &hash).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"payload");
        let bad = f.download(&url, &d.join("cache/y.deb"), 7, &sha256_hex(b"other"));
        assert!(matches!(bad, Err(Error::Checksum { what, .. }) if what == url));
        assert!(!d.join("cache/y.deb").exists());
        assert!(matches!(f.get("ftp://x/y", None), Err(Error::BadUrl(_))));
        assert!(matches!(
            f.get(&format!("file://{}/none", d.display()), None),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            join("http://m/debian/", "/dists/sid"),
            "http://m/debian/dists/sid"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
