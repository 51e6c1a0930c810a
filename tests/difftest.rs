//! Differential tests: bare-metal programs run on QEMU (the reference) and on
//! Rivet, and their console output must match line by line.
//!
//! Two kinds of program:
//! - random instruction streams per extension group (tests/difftest/gen.rs),
//!   100 streams per ELF, each with its own initial state and full state dump;
//! - directed privileged-architecture programs (tests/difftest/programs/*.c).
//!
//! Needs `riscv64-unknown-elf-gcc` and `qemu-system-riscv64`; without them each
//! test says loudly that it is skipped (and fails when `CI` is set, where the
//! tools are always installed).
//!
//! Environment:
//! - RIVET_DIFFTEST_SEED=<n>   base seed (decimal or 0x-hex) for new random programs
//! - RIVET_DIFFTEST_ITERS=<n>  programs (of 100 streams) per extension group
//! - RIVET_DIFFTEST_SELFCHECK=1  compare QEMU against a second QEMU run instead of
//!   Rivet (proves the harness: programs are deterministic and complete)
//! - RIVET_DIFFTEST_TIMEOUT=<s>  per-run timeout (default 120 s)
//! - RIVET_DIFFTEST_GCC, RIVET_DIFFTEST_QEMU  tool paths

#[path = "difftest/encode.rs"]
mod encode;
#[path = "difftest/gen.rs"]
mod gen;
#[path = "difftest/runner.rs"]
mod runner;

use std::fmt::Write as _;
use std::time::Instant;

use gen::Group;
use runner::{completeness, RunResult, Toolchain};

/// Streams per program: one QEMU launch covers this many.
const STREAMS_PER_PROGRAM: usize = 100;
/// Programs per group in the default run.
const DEFAULT_PROGRAMS: usize = 20;
/// Fixed base seed of the default run.
const DEFAULT_SEED: u64 = 0x5249_5645_5400_0001;
/// Failing streams described in full per program.
const MAX_REPORTED_STREAMS: usize = 3;

struct Config {
    seed: u64,
    programs: usize,
    selfcheck: bool,
}

fn parse_u64(v: &str) -> Option<u64> {
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn config() -> Config {
    let seed = std::env::var("RIVET_DIFFTEST_SEED").ok().map(|v| {
        parse_u64(&v).unwrap_or_else(|| panic!("RIVET_DIFFTEST_SEED={v:?} is not a number"))
    });
    let programs = std::env::var("RIVET_DIFFTEST_ITERS").ok().map(|v| {
        parse_u64(&v).unwrap_or_else(|| panic!("RIVET_DIFFTEST_ITERS={v:?} is not a number"))
            as usize
    });
    Config {
        seed: seed.unwrap_or(DEFAULT_SEED),
        programs: programs.unwrap_or(DEFAULT_PROGRAMS),
        selfcheck: std::env::var("RIVET_DIFFTEST_SELFCHECK").is_ok_and(|v| v == "1"),
    }
}

fn toolchain(test: &str) -> Option<Toolchain> {
    match Toolchain::find() {
        Ok(t) => Some(t),
        Err(runner::Missing(why)) => {
            let msg = format!(
                "difftest {test}: {why}; install gcc-riscv64-unknown-elf and qemu-system-misc"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg} (CI is set: the tools must be installed there)");
            }
            eprintln!("\n**************** SKIPPED ****************\n{msg}\n*****************************************\n");
            None
        }
    }
}

/// Runs the program under test: Rivet with each engine of [`runner::engines`], or QEMU
/// again in self-check mode.
fn run_other(tc: &Toolchain, elf: &std::path::Path, cfg: &Config) -> Vec<(String, RunResult)> {
    if cfg.selfcheck {
        return vec![(
            "QEMU (second run)".to_string(),
            runner::run(tc.qemu_command(elf), runner::timeout()),
        )];
    }
    runner::engines()
        .into_iter()
        .map(|e| {
            let r = runner::run(runner::rivet_command(elf, &e), runner::timeout());
            (format!("Rivet ({e})"), r)
        })
        .collect()
}

/// Instructions per stream: enough to build dependencies between results,
/// few enough that a mismatch is easy to read.
fn stream_len(g: Group) -> usize {
    match g {
        Group::A | Group::CacheHint => 30,
        Group::C | Group::LoadStore => 50,
        _ => 40,
    }
}

fn program_seed(cfg: &Config, g: Group, p: usize) -> u64 {
    let mut h = runner::Fnv::new();
    h.add(g.name().as_bytes());
    cfg.seed ^ h.0 ^ (p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `key=value` pairs of one stream's dump lines ("x5" -> "000...").
fn kv<'a>(lines: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    lines
        .iter()
        .map(|l| {
            let body = l.split_once(' ').map_or("", |(_, b)| b);
            // Trap lines carry several fields: key them by "trapN".
            if body.starts_with("trap") {
                let (k, v) = body.split_once(' ').unwrap_or((body, ""));
                (k, v)
            } else {
                body.split_once('=').unwrap_or((body, ""))
            }
        })
        .collect()
}

fn describe_stream(
    other: &str,
    stream: &gen::Stream,
    exp: &[&str],
    got: Option<&Vec<&str>>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "--- stream {} (memory seed {:#x}):",
        stream.index, stream.mem_seed
    );
    let _ = write!(s, "{}", stream.listing());
    let Some(got) = got else {
        let _ = writeln!(s, "  {other} printed no dump for this stream");
        return s;
    };
    let e = kv(exp);
    let g = kv(got);
    let _ = writeln!(s, "  differing state (QEMU vs {other}):");
    for (k, v) in &e {
        match g.iter().find(|(gk, _)| gk == k) {
            Some((_, gv)) if gv == v => {}
            Some((_, gv)) => {
                let init = stream
                    .initial(k)
                    .map(|i| format!("   (initial {i})"))
                    .unwrap_or_default();
                let _ = writeln!(s, "    {k}: QEMU {v}  {other} {gv}{init}");
            }
            None => {
                let _ = writeln!(s, "    {k}: QEMU {v}  {other} <missing>");
            }
        }
    }
    for (k, v) in &g {
        if !e.iter().any(|(ek, _)| ek == k) {
            let _ = writeln!(s, "    {k}: QEMU <absent>  {other} {v}");
        }
    }
    s
}

fn check_group(g: Group) {
    let test = format!("streams_{}", g.name());
    let Some(tc) = toolchain(&test) else { return };
    let cfg = config();
    let mut failures = Vec::new();
    let (mut t_ref, mut t_other) = (0.0, 0.0);
    for p in 0..cfg.programs {
        let seed = program_seed(&cfg, g, p);
        let prog = gen::program(g, seed, STREAMS_PER_PROGRAM, stream_len(g));
        let elf = tc.build(
            &format!("{}-{p}", g.name()),
            &[("streams.S".to_string(), prog.asm.clone())],
            true,
            &[],
        );
        let t = Instant::now();
        let reference = tc.qemu_reference(&elf, runner::timeout(), !cfg.selfcheck);
        t_ref += t.elapsed().as_secs_f64();
        if let Err(e) = completeness(&reference, Some(STREAMS_PER_PROGRAM)) {
            panic!(
                "harness error: QEMU run of {} (group {}, seed {seed:#x}) is incomplete: {e}\n\
                 last output:\n{}",
                elf.display(),
                g.name(),
                tail(&reference.stdout, 20)
            );
        }
        let t = Instant::now();
        let runs = run_other(&tc, &elf, &cfg);
        t_other += t.elapsed().as_secs_f64();
        let mut single_step = None;
        for (other, got) in &runs {
            let other = other.as_str();
            if got.stdout == reference.stdout && got.status == Some(0) && !got.timed_out {
                continue;
            }
            if !cfg.selfcheck && got.status == Some(0) && !got.timed_out {
                let single =
                    single_step.get_or_insert_with(|| tc.qemu_single_step(&elf, runner::timeout()));
                if single.status == Some(0) && single.stdout == got.stdout {
                    eprintln!(
                        "NOTE: group {} program {p} ({}): QEMU's normal run differs from its \
                         own one-instruction-per-block run, which {other} matches (a QEMU TCG bug)",
                        g.name(),
                        elf.display()
                    );
                    continue;
                }
            }
            let mut rep = String::new();
            let _ = writeln!(
            rep,
            "group {} program {p}: seed {seed:#x} (RIVET_DIFFTEST_SEED={:#x}), ELF {}\n  {other}: {}",
            g.name(),
            cfg.seed,
            elf.display(),
            got.describe_exit()
        );
            let exp = runner::by_stream(&reference.stdout);
            let act = runner::by_stream(&got.stdout);
            if act.is_empty() {
                let _ = writeln!(
                    rep,
                    "  {other} dumped no stream at all; its output begins:\n{}",
                    head(&got.stdout, 10)
                );
                failures.push(rep);
                continue;
            }
            let mut bad = 0;
            for (n, lines) in &exp {
                if act.get(n) == Some(lines) {
                    continue;
                }
                bad += 1;
                if bad <= MAX_REPORTED_STREAMS {
                    rep.push_str(&describe_stream(
                        other,
                        &prog.streams[*n],
                        lines,
                        act.get(n),
                    ));
                }
            }
            let _ = writeln!(rep, "  {bad} of {} streams differ", exp.len());
            if bad == 0 {
                // Same dumps, different framing (exit status, DONE/END, extra text).
                rep.push_str(
                    &runner::compare_lines(&reference.stdout, &got.stdout).unwrap_or_default(),
                );
            }
            failures.push(rep);
        }
    }
    eprintln!(
        "difftest {test}: {} programs x {STREAMS_PER_PROGRAM} streams; QEMU {t_ref:.1}s, other {t_other:.1}s",
        cfg.programs
    );
    if !failures.is_empty() {
        panic!(
            "{} of {} programs differ from QEMU in group {}:\n{}",
            failures.len(),
            cfg.programs,
            g.name(),
            failures.join("\n")
        );
    }
}

fn head(s: &str, n: usize) -> String {
    s.lines().take(n).map(|l| format!("    {l}\n")).collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Builds a directed program from tests/difftest/programs/<file> and compares.
fn check_program(name: &str, file: &str, defines: &[&str]) {
    let Some(tc) = toolchain(name) else { return };
    let cfg = config();
    let path = runner::programs_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let elf = tc.build(name, &[(file.to_string(), text)], false, defines);
    let reference = tc.qemu_reference(&elf, runner::timeout(), !cfg.selfcheck);
    if let Err(e) = completeness(&reference, None) {
        panic!(
            "harness error: QEMU run of {name} ({}) is incomplete: {e}\nlast output:\n{}",
            elf.display(),
            tail(&reference.stdout, 20)
        );
    }
    for (other, got) in run_other(&tc, &elf, &cfg) {
        let mut diff = runner::compare_lines(&reference.stdout, &got.stdout);
        if diff.is_none() && (got.status != Some(0) || got.timed_out) {
            diff = Some("output equal but the run did not end cleanly\n".to_string());
        }
        if let Some(d) = diff {
            panic!(
                "{name}: {other} differs from QEMU ({}; ELF {}):\n{d}",
                got.describe_exit(),
                elf.display()
            );
        }
    }
    eprintln!(
        "difftest {name}: {} lines equal",
        reference.stdout.lines().count()
    );
}

/// Hot loops that the compiler tier runs compiled (both at the default threshold and
/// at threshold 1), checked against QEMU with both engines.
#[test]
fn program_hot_loops() {
    check_program("hot_loops", "hot_loops.c", &[]);
}

macro_rules! group_tests {
    ($($name:ident => $group:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_group($group);
            }
        )*
    };
}

group_tests! {
    streams_i => Group::I,
    streams_m => Group::M,
    streams_a => Group::A,
    streams_f => Group::F,
    streams_d => Group::D,
    streams_c => Group::C,
    streams_zba => Group::Zba,
    streams_zbb => Group::Zbb,
    streams_zbc => Group::Zbc,
    streams_zbs => Group::Zbs,
    streams_zicond => Group::Zicond,
    streams_zfa => Group::Zfa,
    streams_ldst => Group::LoadStore,
    streams_csr => Group::Csr,
    streams_cbo => Group::CacheHint,
}

#[test]
fn priv_traps() {
    check_program("priv_traps", "traps.c", &[]);
}

#[test]
fn priv_sv39() {
    check_program("priv_sv39", "vm.c", &["MODE=8"]);
}

#[test]
fn priv_sv48() {
    check_program("priv_sv48", "vm.c", &["MODE=9"]);
}

#[test]
fn priv_sv57() {
    check_program("priv_sv57", "vm.c", &["MODE=10"]);
}

#[test]
fn priv_pmp() {
    check_program("priv_pmp", "pmp.c", &[]);
}

#[test]
fn priv_timer() {
    check_program("priv_timer", "timer.c", &[]);
}

/// Hypervisor extension: H and VS CSRs, their WARL masks and the V=1 redirection.
#[test]
fn priv_hyp_csr() {
    check_program("priv_hyp_csr", "hyp_csr.c", &[]);
}

/// Hypervisor extension: traps between M, HS, VS and VU, virtual-instruction
/// exceptions, VS-level interrupts.
#[test]
fn priv_hyp_traps() {
    check_program("priv_hyp_traps", "hyp_traps.c", &[]);
}

/// Two-stage translation with a Sv39x4 G stage.
#[test]
fn priv_hyp_sv39x4() {
    check_program("priv_hyp_sv39x4", "hyp_vm.c", &["MODE=8"]);
}

/// Two-stage translation with a Sv48x4 G stage.
#[test]
fn priv_hyp_sv48x4() {
    check_program("priv_hyp_sv48x4", "hyp_vm.c", &["MODE=9"]);
}

/// Two-stage translation with a Sv57x4 G stage.
#[test]
fn priv_hyp_sv57x4() {
    check_program("priv_hyp_sv57x4", "hyp_vm.c", &["MODE=10"]);
}
