//! Bare-metal test binaries on the `spike` machine: HTIF `tohost` (found from the ELF's
//! symbols) ends the run with the test's status, as riscv-tests expect.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{rivet, run_with_timeout};

/// A riscv-tests-shaped program: writes `(code << 1) | 1` to tohost (1 = pass).
fn build(dir: &Path, name: &str, code: u32) -> Option<PathBuf> {
    let src = dir.join(format!("{name}.S"));
    let elf = dir.join(format!("{name}.elf"));
    let ld = dir.join("link.ld");
    std::fs::write(
        &ld,
        "ENTRY(_start)\nSECTIONS { . = 0x80000000; .text : { *(.text.init) *(.text*) } \
         .tohost : { *(.tohost) } }\n",
    )
    .ok()?;
    std::fs::write(
        &src,
        format!(
            r#"
    .section .text.init
    .globl _start
_start:
    li t0, {v}
    la t1, tohost
1:  sd t0, 0(t1)
    j 1b
    .section .tohost, "aw", @progbits
    .balign 64
    .globl tohost
tohost: .dword 0
    .balign 64
    .globl fromhost
fromhost: .dword 0
"#,
            v = (code << 1) | 1
        ),
    )
    .ok()?;
    let ok = Command::new("riscv64-unknown-elf-gcc")
        .args(["-nostdlib", "-nostartfiles", "-march=rv64gc", "-T"])
        .arg(&ld)
        .arg("-o")
        .arg(&elf)
        .arg(&src)
        .status()
        .ok()?
        .success();
    ok.then_some(elf)
}

#[test]
fn htif_pass_and_fail_become_exit_status() {
    let dir = std::env::temp_dir().join(format!("rivet-spike-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (Some(pass), Some(fail)) = (build(&dir, "pass", 0), build(&dir, "fail", 5)) else {
        eprintln!("SKIPPED: riscv64-unknown-elf-gcc missing: cannot build HTIF test programs");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the cross toolchain"
        );
        return;
    };
    for (elf, want) in [(pass, 0), (fail, 5)] {
        let mut cmd = rivet();
        cmd.args(["run", "--machine", "spike", "--bios", "none", "--kernel"])
            .arg(&elf);
        let o = run_with_timeout(cmd, Duration::from_secs(30));
        assert_eq!(
            o.status,
            Some(want),
            "{}: stderr {}",
            elf.display(),
            o.stderr
        );
    }
}
