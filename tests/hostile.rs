//! A hostile guest: random instruction words, executed with a trap handler that skips
//! whatever faults, so random CSR writes (satp, PMP, mstatus, mtvec...), wild loads and
//! stores, MMIO pokes and page tables pointing anywhere all happen. Rivet must never
//! panic: the run ends by the guest powering off, failing, or our timeout.

mod common;

use std::time::Duration;

use common::{rivet, run_with_timeout};

/// xorshift64*, so the test needs no crates and every seed is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The stub: install a trap handler that resumes at the next word of the random region
/// (wrapping inside it), turn the FPU on, and jump into the random words. Random code
/// may still lose the handler (a random `csrw mtvec`), which is a legitimate hang.
const STUB: &str = r#"
    .section .text
    .globl _start
_start:
    la t0, handler
    csrw mtvec, t0
    li t0, 0x6000
    csrs mstatus, t0
    j code
    .balign 4
handler:
    csrr t0, mepc
    addi t0, t0, 4
    la t1, code
    sub t0, t0, t1
    li t2, 0xfffc
    and t0, t0, t2
    add t0, t0, t1
    csrw mepc, t0
    mret
    .balign 64
code:
"#;

/// A raw image for 0x8000_0000: the assembled stub, then 64 KiB of random words.
fn program(seed: u64, stub: &[u8]) -> Vec<u8> {
    let mut out = stub.to_vec();
    let mut rng = Rng(seed | 1);
    for _ in 0..16384 {
        let w = rng.next();
        // Bias towards real encodings: most words get a valid 32-bit major opcode.
        let word = if w & 7 == 0 { w as u32 } else { (w as u32) | 3 };
        out.extend(word.to_le_bytes());
    }
    out
}

/// Assembles STUB into a flat binary with the cross toolchain.
fn assemble_stub(dir: &std::path::Path) -> Option<Vec<u8>> {
    let src = dir.join("stub.S");
    let elf = dir.join("stub.elf");
    let bin = dir.join("stub.bin");
    std::fs::write(&src, STUB).ok()?;
    let ok = std::process::Command::new("riscv64-unknown-elf-gcc")
        .args([
            "-nostdlib",
            "-nostartfiles",
            "-march=rv64gc",
            "-Wl,-Ttext=0x80000000",
            "-o",
        ])
        .arg(&elf)
        .arg(&src)
        .status()
        .ok()?
        .success()
        && std::process::Command::new("riscv64-unknown-elf-objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&elf)
            .arg(&bin)
            .status()
            .ok()?
            .success();
    if !ok {
        return None;
    }
    let mut b = std::fs::read(&bin).ok()?;
    // The random words start at `code`, wherever the linker put it.
    let nm = std::process::Command::new("riscv64-unknown-elf-nm")
        .arg(&elf)
        .output()
        .ok()?;
    let code = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .find(|l| l.ends_with(" code"))
        .and_then(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok())?;
    b.truncate(usize::try_from(code - 0x8000_0000).ok()?);
    Some(b)
}

#[test]
fn random_code_never_panics_the_host() {
    let dir = std::env::temp_dir().join(format!("rivet-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some(stub) = assemble_stub(&dir) else {
        eprintln!(
            "SKIPPED: riscv64-unknown-elf-gcc/objcopy/nm missing: cannot build the hostile guest"
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the cross toolchain"
        );
        return;
    };
    let seeds: Vec<u64> = match std::env::var("RIVET_HOSTILE_SEED") {
        Ok(s) => vec![s.parse().expect("RIVET_HOSTILE_SEED is a number")],
        Err(_) => (1..=10).map(|i| i * 0x9e37_79b9_7f4a_7c15).collect(),
    };
    // The default engine, and the JIT compiling every block on its first run (so the
    // random code runs compiled, chained and flushed too).
    let engines: [&[&str]; 2] = [
        &[],
        &["--jit-sync", "--jit-threshold", "1", "--jit-cache-mib", "1"],
    ];
    for (seed, engine) in seeds
        .iter()
        .flat_map(|&s| engines.iter().map(move |e| (s, e)))
    {
        let path = dir.join(format!("{seed:x}.bin"));
        std::fs::write(&path, program(seed, &stub)).unwrap();
        let mut cmd = rivet();
        cmd.args(["run", "--bios", "none", "--memory", "64M", "--smp", "2"])
            .args(engine.iter())
            .arg("--kernel")
            .arg(&path);
        let o = run_with_timeout(cmd, Duration::from_secs(2));
        assert!(
            !o.stderr.contains("panicked") && !o.stderr.contains("RUST_BACKTRACE"),
            "seed {seed:#x} {engine:?}: rivet panicked:\n{}",
            o.stderr
        );
        // A run that ended by itself was a guest poweroff, reboot or failure report
        // (the SiFive test device is at 0x100000, random stores may hit it).
        if let Some(code) = o.status {
            assert!(
                code != 101,
                "seed {seed:#x} {engine:?}: exit status 101 (a Rust panic)"
            );
        }
    }
}
