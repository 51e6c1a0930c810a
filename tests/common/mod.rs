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

pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the command under test");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
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
        eprintln!(
            "SKIPPED: cannot build the reference '{scenario}' guest (network or mirror unavailable?): {}",
            o.stderr.trim()
        );
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
