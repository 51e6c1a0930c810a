//! Helpers shared by the whole-emulator tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn rivet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rivet"))
}

/// Output and exit status of a finished command; a command that outlives `timeout` is
/// killed and reported as `None` status.
pub struct Outcome {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Outcome {
    run_with_input(cmd, timeout, Vec::new())
}

/// Like [`run_with_timeout`], feeding `input` to stdin as (delay, bytes) steps: each
/// step waits until the output so far contains its marker, or its delay passes.
pub fn run_with_input(
    mut cmd: Command,
    timeout: Duration,
    input: Vec<(&'static str, &'static [u8])>,
) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the command under test");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let seen_out = seen.clone();
    let t_out = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen_out.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let s = seen_out.lock().unwrap();
        String::from_utf8_lossy(&s).into_owned()
    });
    std::thread::spawn(move || {
        use std::io::Write;
        let start = Instant::now();
        for (marker, bytes) in input {
            while !String::from_utf8_lossy(&seen.lock().unwrap()).contains(marker) {
                if start.elapsed() > timeout {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if stdin.write_all(bytes).is_err() {
                return;
            }
            let _ = stdin.flush();
        }
        // Keep stdin open until the guest is done, like a terminal would.
        std::thread::sleep(timeout);
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for the command") {
            break st.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// The reference guest files of `scenario`, built (or found cached) by `rivet image
/// build`. `None`, said loudly, when they cannot be had (no network, no mirror).
pub struct Guest {
    pub firmware: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

pub fn guest(scenario: &str) -> Option<Guest> {
    let mut cmd = rivet();
    cmd.args(["image", "build", scenario]);
    let o = run_with_timeout(cmd, Duration::from_secs(1200));
    if o.status != Some(0) {
        let msg = format!(
            "cannot build the reference '{scenario}' guest (network or mirror unavailable?): {}",
            o.stderr.trim()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg} (CI is set: the guest must be available there)");
        }
        eprintln!("SKIPPED: {msg}");
        return None;
    }
    let field = |k: &str| {
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| PathBuf::from(v.trim())))
            .unwrap_or_else(|| panic!("`rivet image build` printed no '{k}' line:\n{}", o.stdout))
    };
    Some(Guest {
        firmware: field("firmware "),
        kernel: field("kernel "),
        initrd: field("initrd "),
    })
}
