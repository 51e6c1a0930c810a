//! `rivet-bench`: Rivet against QEMU, side by side in one run, on the same guests.
//!
//! Runs alternate (QEMU, Rivet, QEMU, Rivet, ...) so the noise of a shared machine hits
//! both, every run has a timeout, and the table shows medians and the ratio
//! Rivet time / QEMU time (below 1.0 means Rivet is faster).
//!
//! ```text
//! cargo run --release --bin rivet-bench -- [--runs N] [--only NAME[,NAME]] [--qemu PATH]
//! ```
//!
//! Benchmarks: boot, boot-noquiet, boot-smp2, nested, nested-smp2, workloads (the
//! reference guests) and world-switch (a bare-metal VS guest exiting to an HS loop,
//! assembled with riscv64-unknown-elf-gcc).
//!
//! ```text
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
#[command(about = "Rivet against QEMU, side by side, on the reference guests")]
struct Args {
    /// Runs of each engine per benchmark (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Comma-separated benchmark names (default: all).
    #[arg(long)]
    only: Option<String>,
    /// The rivet binary (default: the one next to this executable).
    #[arg(long)]
    rivet: Option<PathBuf>,
    /// The QEMU binary.
    #[arg(long, default_value = "qemu-system-riscv64")]
    qemu: PathBuf,
    /// Per-run timeout in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// One run's outcome: wall time, and the guest's own timings when it prints them.
struct Sample {
    wall: Duration,
    to_marker: Option<Duration>,
    guest_ms: BTreeMap<String, f64>,
    /// The world-switch program's counts (ticks per kind, and `n`).
    world_switch: Option<BTreeMap<String, u64>>,
}

struct Guest {
    firmware: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
}

/// A benchmark: how to boot it on each engine and which marker ends it.
struct Bench {
    name: &'static str,
    scenario: &'static str,
    /// `-M` / `--machine`.
    machine: &'static str,
    smp: u32,
    append: &'static str,
    marker: &'static str,
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "boot",
        scenario: "boot",
        machine: "virt",
        smp: 1,
        append: "console=ttyS0 quiet",
        marker: "RIVET-BOOT-OK",
    },
    Bench {
        name: "boot-noquiet",
        scenario: "boot",
        machine: "virt",
        smp: 1,
        append: "console=ttyS0",
        marker: "RIVET-BOOT-OK",
    },
    Bench {
        name: "boot-smp2",
        scenario: "boot",
        machine: "virt",
        smp: 2,
        append: "console=ttyS0 quiet",
        marker: "RIVET-BOOT-OK",
    },
    // The nested guest end to end: outer boot, insmod kvm, the inner QEMU with
    // -accel kvm, the inner Linux to its marker.
    Bench {
        name: "nested",
        scenario: "nested",
        machine: "virt",
        smp: 1,
        append: "console=ttyS0 quiet",
        marker: "RIVET-NESTED-OK",
    },
    Bench {
        name: "nested-smp2",
        scenario: "nested",
        machine: "virt",
        smp: 2,
        append: "console=ttyS0 quiet",
        marker: "RIVET-NESTED-OK",
    },
    // The AIA: IPIs and device interrupts through IMSIC files and the APLIC.
    Bench {
        name: "boot-aia-smp2",
        scenario: "boot",
        machine: "virt,aia=aplic-imsic",
        smp: 2,
        append: "console=ttyS0 quiet",
        marker: "RIVET-BOOT-OK",
    },
    // The nested guest on KVM's in-kernel AIA: the inner QEMU runs
    // `-M virt,aia=aplic-imsic -smp 2` on the outer IMSIC's guest interrupt files.
    Bench {
        name: "nested-aia",
        scenario: "nested",
        machine: "virt,aia=aplic-imsic,aia-guests=5",
        smp: 2,
        append: "console=ttyS0 quiet",
        marker: "RIVET-NESTED-OK",
    },
    Bench {
        name: "workloads",
        scenario: "bench",
        machine: "virt",
        smp: 1,
        append: "console=ttyS0 quiet",
        marker: "RIVET-BENCH-DONE",
    },
];

fn main() -> ExitCode {
    let args = Args::parse();
    let rivet = args.rivet.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("rivet")))
            .unwrap_or_else(|| PathBuf::from("rivet"))
    });
    if !rivet.exists() {
        eprintln!(
            "rivet-bench: no rivet binary at {} (build with `cargo build --release`)",
            rivet.display()
        );
        return ExitCode::from(2);
    }
    if Command::new(&args.qemu).arg("--version").output().is_err() {
        eprintln!(
            "rivet-bench: {} not found (install qemu-system-riscv)",
            args.qemu.display()
        );
        return ExitCode::from(2);
    }
    let only: Option<Vec<&str>> = args.only.as_deref().map(|s| s.split(',').collect());
    let timeout = Duration::from_secs(args.timeout);
    let mut rows = Vec::new();
    for b in BENCHES {
        if only.as_ref().is_some_and(|o| !o.contains(&b.name)) {
            continue;
        }
        let guest = match build_guest(&rivet, b.scenario) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("rivet-bench: {}: skipped: {e}", b.name);
                continue;
            }
        };
        let mut qemu = Vec::new();
        let mut ours = Vec::new();
        let mut failure = None;
        for i in 0..args.runs {
            eprintln!("rivet-bench: {} run {}/{}", b.name, i + 1, args.runs);
            match run(qemu_command(&args.qemu, b, &guest), b.marker, timeout) {
                Ok(s) => qemu.push(s),
                Err(e) => failure = Some(format!("QEMU: {e}")),
            }
            match run(rivet_command(&rivet, b, &guest), b.marker, timeout) {
                Ok(s) => ours.push(s),
                Err(e) => failure = Some(format!("Rivet: {e}")),
            }
        }
        rows.extend(table_rows(b.name, &qemu, &ours, failure));
    }
    if only.as_ref().is_none_or(|o| o.contains(&"world-switch")) {
        rows.extend(world_switch(&args, &rivet, timeout));
    }
    print_table(&rows);
    ExitCode::SUCCESS
}

/// The bare-metal world-switch program (an HS-mode loop running a VS-mode guest that
/// exits by ecall and by guest-page fault), assembled here when the RISC-V cross
/// assembler is installed.
const WORLD_SWITCH: &str = include_str!("world_switch.S");

/// Round trips VS -> HS -> VS of each kind the program times, in nanoseconds each
/// (the guest's own `time`, 10 MHz on both machines).
fn world_switch(args: &Args, rivet: &Path, timeout: Duration) -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("rivet-bench-ws-{}", std::process::id()));
    let elf = dir.join("world_switch.elf");
    let built = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("world_switch.S"), WORLD_SWITCH))
        .map_err(|e| e.to_string())
        .and_then(|()| {
            Command::new("riscv64-unknown-elf-gcc")
                .args([
                    "-march=rv64g_zicsr",
                    "-mabi=lp64",
                    "-nostdlib",
                    "-nostartfiles",
                ])
                .args(["-static", "-Wl,-N", "-Wl,-Ttext=0x80000000", "-o"])
                .arg(&elf)
                .arg(dir.join("world_switch.S"))
                .output()
                .map_err(|e| format!("riscv64-unknown-elf-gcc: {e}"))
        });
    match built {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "rivet-bench: world-switch: skipped: assembling failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return Vec::new();
        }
        Err(e) => {
            eprintln!("rivet-bench: world-switch: skipped (install gcc-riscv64-unknown-elf): {e}");
            return Vec::new();
        }
    }
    let marker = "RIVET-WS ";
    let mut qemu = Vec::new();
    let mut ours = Vec::new();
    let mut failure = None;
    for i in 0..args.runs {
        eprintln!("rivet-bench: world-switch run {}/{}", i + 1, args.runs);
        let mut q = Command::new(&args.qemu);
        q.args([
            "-M",
            "virt",
            "-m",
            "256M",
            "-nographic",
            "-bios",
            "none",
            "-kernel",
        ])
        .arg(&elf);
        let mut r = Command::new(rivet);
        r.args(["run", "--memory", "256M", "--bios", "none", "--kernel"])
            .arg(&elf);
        for (cmd, out, who) in [(q, &mut qemu, "QEMU"), (r, &mut ours, "Rivet")] {
            match run(cmd, marker, timeout) {
                Ok(s) => out.push(s),
                Err(e) => failure = Some(format!("{who}: {e}")),
            }
        }
    }
    let note = failure.unwrap_or_default();
    let runs = qemu.len().min(ours.len());
    ["ecall", "gpf"]
        .into_iter()
        .map(|kind| {
            let ns = |v: &[Sample]| -> Vec<f64> {
                v.iter()
                    .filter_map(|s| s.world_switch.as_ref())
                    .filter_map(|w| w.get(kind).map(|&t| t as f64 * 100.0 / w["n"] as f64))
                    .collect()
            };
            Row {
                name: format!("world switch: {kind} round trip"),
                qemu: median(ns(&qemu)),
                rivet: median(ns(&ours)),
                rivet_worst: ns(&ours).into_iter().max_by(|a, b| a.total_cmp(b)),
                unit: "ns",
                runs,
                note: note.clone(),
            }
        })
        .collect()
}

/// The `RIVET-WS key=<hex> ...` line of the world-switch program.
fn parse_world_switch(text: &str) -> Option<BTreeMap<String, u64>> {
    let line = text
        .lines()
        .find_map(|l| l.split_once("RIVET-WS ").map(|(_, r)| r))?;
    let m: BTreeMap<String, u64> = line
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), u64::from_str_radix(v, 16).ok()?))
        })
        .collect();
    (m.get("n").is_some_and(|&n| n > 0)).then_some(m)
}

fn build_guest(rivet: &Path, scenario: &str) -> Result<Guest, String> {
    let out = Command::new(rivet)
        .args(["image", "build", scenario])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rivet.display()))?;
    if !out.status.success() {
        return Err(format!("`rivet image build {scenario}` failed"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| PathBuf::from(v.trim())))
            .ok_or_else(|| format!("`rivet image build` printed no {k}line"))
    };
    Ok(Guest {
        firmware: field("firmware ")?,
        kernel: field("kernel ")?,
        initrd: field("initrd ")?,
    })
}

fn qemu_command(qemu: &Path, b: &Bench, g: &Guest) -> Command {
    let mut c = Command::new(qemu);
    c.args([
        "-M",
        b.machine,
        "-m",
        "2G",
        "-smp",
        &b.smp.to_string(),
        "-nographic",
        "-bios",
    ])
    .arg(&g.firmware)
    .arg("-kernel")
    .arg(&g.kernel)
    .arg("-initrd")
    .arg(&g.initrd)
    .args(["-append", b.append]);
    c
}

fn rivet_command(rivet: &Path, b: &Bench, g: &Guest) -> Command {
    let mut c = Command::new(rivet);
    c.args([
        "run",
        "--machine",
        b.machine,
        "--memory",
        "2G",
        "--smp",
        &b.smp.to_string(),
    ])
    .arg("--bios")
    .arg(&g.firmware)
    .arg("--kernel")
    .arg(&g.kernel)
    .arg("--initrd")
    .arg(&g.initrd)
    .args(["--append", b.append]);
    c
}

/// Runs one guest to completion, noting when `marker` first appears on the console.
fn run(mut cmd: Command, marker: &str, timeout: Duration) -> Result<Sample, String> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let marker = marker.to_string();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut seen = None;
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            if seen.is_none() && String::from_utf8_lossy(&text).contains(&marker) {
                seen = Some(start.elapsed());
            }
        }
        (String::from_utf8_lossy(&text).into_owned(), seen)
    });
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed();
    let (text, to_marker) = reader
        .join()
        .map_err(|_| "reader thread failed".to_string())?;
    if to_marker.is_none() {
        return Err(format!("no marker (exit {status})"));
    }
    Ok(Sample {
        wall,
        to_marker,
        guest_ms: parse_guest_timings(&text),
        world_switch: parse_world_switch(&text),
    })
}

/// `RIVET-BENCH name=<n> ms=<t>` lines printed by the bench guest.
fn parse_guest_timings(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let rest = &l[l.find("RIVET-BENCH name=")? + "RIVET-BENCH name=".len()..];
            let (name, ms) = rest.split_once(" ms=")?;
            Some((name.trim().to_string(), ms.trim().parse().ok()?))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

struct Row {
    name: String,
    qemu: Option<f64>,
    rivet: Option<f64>,
    /// Rivet's slowest run.
    rivet_worst: Option<f64>,
    unit: &'static str,
    runs: usize,
    note: String,
}

fn table_rows(name: &str, qemu: &[Sample], ours: &[Sample], failure: Option<String>) -> Vec<Row> {
    let note = failure.unwrap_or_default();
    let runs = qemu.len().min(ours.len());
    let secs = |v: &[Sample], f: fn(&Sample) -> Option<Duration>| {
        median(v.iter().filter_map(f).map(|d| d.as_secs_f64()).collect())
    };
    let worst = |v: &[Sample], f: fn(&Sample) -> Option<Duration>| {
        v.iter()
            .filter_map(f)
            .map(|d| d.as_secs_f64())
            .max_by(|a, b| a.total_cmp(b))
    };
    let mut rows = vec![
        Row {
            name: format!("{name} (to marker)"),
            qemu: secs(qemu, |s| s.to_marker),
            rivet: secs(ours, |s| s.to_marker),
            rivet_worst: worst(ours, |s| s.to_marker),
            unit: "s",
            runs,
            note: note.clone(),
        },
        Row {
            name: format!("{name} (whole run)"),
            qemu: secs(qemu, |s| Some(s.wall)),
            rivet: secs(ours, |s| Some(s.wall)),
            rivet_worst: worst(ours, |s| Some(s.wall)),
            unit: "s",
            runs,
            note,
        },
    ];
    let names: std::collections::BTreeSet<&String> = qemu
        .iter()
        .chain(ours)
        .flat_map(|s| s.guest_ms.keys())
        .collect();
    for w in names {
        let ms = |v: &[Sample]| {
            median(
                v.iter()
                    .filter_map(|s| s.guest_ms.get(w).copied())
                    .collect(),
            )
        };
        let most = |v: &[Sample]| {
            v.iter()
                .filter_map(|s| s.guest_ms.get(w).copied())
                .max_by(|a, b| a.total_cmp(b))
        };
        rows.push(Row {
            name: format!("  {w} (guest-timed)"),
            qemu: ms(qemu),
            rivet: ms(ours),
            rivet_worst: most(ours),
            unit: "ms",
            runs,
            note: String::new(),
        });
    }
    rows
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12}  {:>4}  note",
        "benchmark", "QEMU", "Rivet", "Rivet/QEMU", "worst/QEMU", "runs"
    );
    for r in rows {
        let v = |x: Option<f64>| x.map_or("FAIL".to_string(), |x| format!("{x:.2} {}", r.unit));
        let ratio = |o: Option<f64>| match (r.qemu, o) {
            (Some(q), Some(o)) if q > 0.0 => format!("{:.2}x", o / q),
            _ => "-".to_string(),
        };
        println!(
            "{:<34} {:>12} {:>12} {:>12} {:>12}  {:>4}  {}",
            r.name,
            v(r.qemu),
            v(r.rivet),
            ratio(r.rivet),
            ratio(r.rivet_worst),
            r.runs,
            r.note
        );
    }
    println!(
        "(Rivet/QEMU is a time ratio of medians: below 1.00x Rivet is faster; worst/QEMU \
         puts Rivet's slowest run against QEMU's median.)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn guest_timings_are_parsed() {
        let t = "noise\r\nRIVET-BENCH name=md5sum-64m ms=990\r\n[ 1.0] x RIVET-BENCH name=gzip ms=12.5\nRIVET-BENCH name=bad ms=x\n";
        let m = parse_guest_timings(t);
        assert_eq!(m.get("md5sum-64m"), Some(&990.0));
        assert_eq!(m.get("gzip"), Some(&12.5));
        assert!(!m.contains_key("bad"));
    }

    #[test]
    fn world_switch_lines_are_parsed() {
        let w =
            parse_world_switch("x\nRIVET-WS ecall=00000000000476ab gpf=8faff n=30d40\n").unwrap();
        assert_eq!((w["ecall"], w["gpf"], w["n"]), (0x476ab, 0x8faff, 200_000));
        assert!(parse_world_switch("RIVET-WS ecall=1 n=0").is_none());
        assert!(parse_world_switch("nothing").is_none());
    }
}
