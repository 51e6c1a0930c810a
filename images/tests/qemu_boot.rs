//! Builds reference guests from the real Debian mirror (the host's apt mirror
//! unless RIVET_DEBIAN_MIRROR says otherwise) and boots them on QEMU, the
//! side-by-side reference. Skips loudly without QEMU or a mirror.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rivet_images::{build, BuildOptions, Error, Guest, Scenario};

const QEMU: &str = "qemu-system-riscv64";

fn have_qemu() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip(why: &str) {
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

/// Builds the guest, or None (after saying why) when the mirror is unreachable.
fn guest(scenario: Scenario) -> Option<Guest> {
    let opts = BuildOptions {
        progress: true,
        ..BuildOptions::default()
    };
    match build(scenario, &opts) {
        Ok(g) => Some(g),
        Err(e @ Error::NoMirror) => {
            skip(&format!("no Debian mirror: {e}"));
            None
        }
        Err(e) if e.is_network() => {
            skip(&format!(
                "Debian mirror unreachable: {e} ({:?})",
                std::error::Error::source(&e)
            ));
            None
        }
        Err(e) => panic!(
            "building the {scenario} guest failed: {e} ({:?})",
            std::error::Error::source(&e)
        ),
    }
}

struct Run {
    /// Time from QEMU's start to each marker line.
    markers: Vec<(String, Duration)>,
    exited: bool,
    log: String,
}

/// Boots `g` on QEMU and collects lines starting with `prefix` until `last`
/// appears, then waits for QEMU to exit. `input` is typed on the console once
/// the first marker shows.
fn boot(
    g: &Guest,
    append: &str,
    prefix: &str,
    last: &str,
    timeout: Duration,
    input: Option<&str>,
) -> Run {
    let start = Instant::now();
    let mut child: Child = Command::new(QEMU)
        .args(["-M", "virt", "-m", "2G", "-smp", "1", "-nographic", "-bios"])
        .arg(&g.firmware)
        .arg("-kernel")
        .arg(&g.kernel)
        .arg("-initrd")
        .arg(&g.initrd)
        .args(["-append", append])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning qemu");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut run = Run {
        markers: Vec::new(),
        exited: false,
        log: String::new(),
    };
    let deadline = start + timeout;
    let mut seen_last = false;
    while Instant::now() < deadline && !seen_last {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                run.log.push_str(&line);
                run.log.push('\n');
                if let Some(pos) = line.find(prefix) {
                    // A kernel message may follow on the same line before the
                    // marker's own newline reaches the console: it starts with '['.
                    let m = line[pos..]
                        .split('[')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    seen_last = m.starts_with(last);
                    run.markers.push((m, start.elapsed()));
                    if let (Some(mut w), Some(text)) = (stdin.take(), input) {
                        let _ = w.write_all(text.as_bytes());
                        let _ = w.flush();
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let exit_deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < exit_deadline {
        if let Ok(Some(_)) = child.try_wait() {
            run.exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !run.exited {
        let _ = child.kill();
    }
    let _ = child.wait();
    run
}

#[test]
fn boot_guest_reaches_marker_on_qemu() {
    if !have_qemu() {
        return skip(&format!(
            "{QEMU} is not installed (apt-get install qemu-system-riscv)"
        ));
    }
    let t = Instant::now();
    let Some(g) = guest(Scenario::Boot) else {
        return;
    };
    eprintln!("boot guest ready in {:.1?}: {g:?}", t.elapsed());
    // A second build with the same index comes from the cache.
    let t = Instant::now();
    let again = guest(Scenario::Boot).expect("second build");
    assert_eq!(again, g);
    eprintln!("second build took {:.1?}", t.elapsed());

    for append in [g.append.as_str(), "console=ttyS0"] {
        let run = boot(
            &g,
            append,
            "RIVET-BOOT-OK",
            "RIVET-BOOT-OK",
            Duration::from_secs(300),
            None,
        );
        let Some((marker, at)) = run.markers.first() else {
            panic!(
                "no RIVET-BOOT-OK marker with -append {append:?}; console:\n{}",
                run.log
            );
        };
        eprintln!("QEMU reached `{marker}` after {at:.2?} (-append {append:?})");
        assert_eq!(marker, &format!("RIVET-BOOT-OK {}", g.kernel_version));
        assert!(
            run.exited,
            "QEMU did not exit after poweroff; console:\n{}",
            run.log
        );
    }
}

#[test]
fn bench_guest_reports_timings_on_qemu() {
    if !have_qemu() {
        return skip(&format!(
            "{QEMU} is not installed (apt-get install qemu-system-riscv)"
        ));
    }
    let Some(g) = guest(Scenario::Bench) else {
        return;
    };
    let run = boot(
        &g,
        &g.append,
        "RIVET-BENCH",
        "RIVET-BENCH-DONE",
        Duration::from_secs(600),
        None,
    );
    for (m, at) in &run.markers {
        eprintln!("{at:>8.2?}  {m}");
    }
    let results: Vec<_> = run
        .markers
        .iter()
        .filter(|(m, _)| m.starts_with("RIVET-BENCH name="))
        .collect();
    assert_eq!(results.len(), 4, "console:\n{}", run.log);
    for (m, _) in results {
        let ms: u64 = m
            .rsplit("ms=")
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad timing line {m:?}"));
        assert!(ms < 600_000, "{m}");
    }
    assert!(run.exited, "QEMU did not exit; console:\n{}", run.log);
}

#[test]
fn shell_guest_runs_typed_commands_on_qemu() {
    if !have_qemu() {
        return skip(&format!(
            "{QEMU} is not installed (apt-get install qemu-system-riscv)"
        ));
    }
    let Some(g) = guest(Scenario::Shell) else {
        return;
    };
    let input = "echo RIVET-SHELL-ECHO-$((6 * 7))\nexit\n";
    let run = boot(
        &g,
        &g.append,
        "RIVET-SHELL",
        "RIVET-SHELL-ECHO-42",
        Duration::from_secs(300),
        Some(input),
    );
    let echoed: Vec<_> = run.markers.iter().map(|(m, _)| m.as_str()).collect();
    assert!(
        echoed.contains(&"RIVET-SHELL-ECHO-42"),
        "console:\n{}",
        run.log
    );
    assert!(
        run.exited,
        "QEMU did not exit after the shell ended; console:\n{}",
        run.log
    );
}

/// KVM inside the guest: needs the H extension, which QEMU's default rv64 CPU has.
#[test]
fn nested_guest_runs_kvm_on_qemu() {
    if !have_qemu() {
        return skip(&format!(
            "{QEMU} is not installed (apt-get install qemu-system-riscv)"
        ));
    }
    let Some(g) = guest(Scenario::Nested) else {
        return;
    };
    let run = boot(
        &g,
        &g.append,
        "RIVET-NESTED",
        "RIVET-NESTED-DONE",
        Duration::from_secs(600),
        None,
    );
    for (m, at) in &run.markers {
        eprintln!("{at:>8.2?}  {m}");
    }
    let names: Vec<_> = run.markers.iter().map(|(m, _)| m.as_str()).collect();
    assert!(
        names.iter().any(|m| m.starts_with("RIVET-NESTED-OK ")),
        "console:\n{}",
        run.log
    );
    assert!(
        names.contains(&"RIVET-NESTED-DONE rc=0"),
        "console:\n{}",
        run.log
    );
    assert!(run.exited, "QEMU did not exit; console:\n{}", run.log);
}
