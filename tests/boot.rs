//! Boots the reference Debian guest (OpenSBI fw_dynamic + Debian kernel + busybox
//! initramfs) on Rivet's virt machine and checks its marker and exit status.

mod common;

use std::time::Duration;

use common::{guest, rivet, run_with_input, run_with_timeout};

/// `rivet run` of reference guest `g` with 2 GiB and the kernel command line `append`.
fn guest_command(g: &common::Guest, append: &str) -> std::process::Command {
    let mut cmd = rivet();
    cmd.args(["run", "--memory", "2G"])
        .arg("--bios")
        .arg(&g.firmware)
        .arg("--kernel")
        .arg(&g.kernel)
        .arg("--initrd")
        .arg(&g.initrd)
        .args(["--append", append]);
    cmd
}

/// Boots the reference guest; `None` (after saying why) when it is not available.
fn boot(smp: &str, append: &str, extra: &[&str]) -> Option<common::Outcome> {
    let g = guest("boot")?;
    let mut cmd = guest_command(&g, append);
    cmd.args(["--machine", "virt", "--smp", smp]).args(extra);
    let o = run_with_timeout(cmd, Duration::from_secs(600));
    let tail: String = o
        .stdout
        .chars()
        .rev()
        .take(3000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(
        o.stdout.contains("RIVET-BOOT-OK"),
        "no boot marker (status {:?}); console tail:\n{tail}\nstderr:\n{}",
        o.status,
        o.stderr
    );
    assert_eq!(
        o.status,
        Some(0),
        "guest powered off but rivet exited with {:?}; stderr:\n{}",
        o.status,
        o.stderr
    );
    assert!(
        !o.stderr.contains("lockstep mismatch"),
        "compiled code diverged from the interpreter:\n{}",
        o.stderr
    );
    if smp != "1" {
        let want = format!("Brought up 1 node, {smp} CPUs");
        assert!(
            o.stdout.contains(&want),
            "secondary harts did not start:\n{tail}"
        );
    }
    Some(o)
}

#[test]
fn debian_boots_quiet() {
    boot("1", "console=ttyS0 quiet", &[]);
}

#[test]
fn debian_boots_verbose_with_two_harts_interpreted() {
    boot("2", "console=ttyS0", &["--engine", "interp"]);
}

#[test]
fn debian_boots_with_the_jit_on_two_harts() {
    boot("2", "console=ttyS0", &["--engine", "jit"]);
}

/// Every compiled block that does not write memory is run by the interpreter too and
/// the states compared (`--lockstep`); rivet fails on the first difference.
#[test]
fn debian_boots_with_the_jit_in_lockstep() {
    boot(
        "1",
        "console=ttyS0 quiet",
        &["--engine", "jit", "--lockstep"],
    );
}

/// A 1 MiB code cache fills many times during the boot: compiled code is flushed and
/// blocks compiled again (on the hart's thread, so chained exits and the flush meet
/// deterministically).
#[test]
fn debian_boots_with_the_jit_flushing_a_small_code_cache() {
    let Some(o) = boot(
        "1",
        "console=ttyS0 quiet",
        &["--jit-sync", "--jit-cache-mib", "1", "--stats"],
    ) else {
        return;
    };
    let flushes = o
        .stderr
        .split([',', ';', '(', ')'])
        .find_map(|part| part.trim().strip_suffix(" flushes"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        flushes.is_some_and(|n| n > 0),
        "no code cache flush reported; stderr:\n{}",
        o.stderr
    );
}

/// The nested reference guest: the outer Debian kernel loads kvm.ko and runs Debian's
/// QEMU with `-accel kvm`, whose inner Linux (in VS-mode, on the hypervisor extension)
/// prints its own marker; the outer guest then powers off.
fn nested(smp: &str, extra: &[&str], timeout: Duration) -> Option<common::Outcome> {
    let g = guest("nested")?;
    let mut cmd = guest_command(&g, "console=ttyS0 quiet");
    cmd.args(["--machine", "virt", "--smp", smp, "--stats"])
        .args(extra);
    let o = run_with_timeout(cmd, timeout);
    let tail: String = o
        .stdout
        .chars()
        .rev()
        .take(4000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    for marker in [
        "RIVET-NESTED-OUTER",
        "RIVET-NESTED-OK",
        "RIVET-NESTED-DONE rc=0",
    ] {
        assert!(
            o.stdout.contains(marker),
            "no '{marker}' (status {:?}); console tail:\n{tail}\nstderr:\n{}",
            o.status,
            o.stderr
        );
    }
    assert!(!o.stdout.contains("RIVET-NESTED-FAIL"), "{tail}");
    assert_eq!(o.status, Some(0), "stderr:\n{}", o.stderr);
    assert!(
        !o.stderr.contains("lockstep mismatch"),
        "compiled code diverged from the interpreter:\n{}",
        o.stderr
    );
    // The inner guest really ran in VS-mode: the hart entered V=1 and took guest-page
    // faults (MMIO exits) there.
    assert!(
        o.stderr.contains("rivet: hypervisor:") && !o.stderr.contains(" 0 guest entries"),
        "no guest entries reported:\n{}",
        o.stderr
    );
    Some(o)
}

#[test]
fn nested_kvm_guest_boots() {
    nested("1", &[], Duration::from_secs(900));
}

#[test]
fn nested_kvm_guest_boots_on_two_outer_harts() {
    nested("2", &[], Duration::from_secs(900));
}

/// The nested boot with every compiled block that does not write memory checked
/// against the interpreter, in HS, VS and VU alike.
#[test]
fn nested_kvm_guest_boots_in_lockstep() {
    nested("1", &["--lockstep"], Duration::from_secs(1800));
}

#[test]
fn shell_guest_runs_typed_commands() {
    let Some(g) = guest("shell") else { return };
    let cmd = guest_command(&g, "console=ttyS0 quiet");
    let o = run_with_input(
        cmd,
        Duration::from_secs(600),
        vec![
            ("RIVET-SHELL-READY", b"echo typed-$((6*7))\n"),
            ("typed-42", b"echo arch=$(uname -m)\n"),
            ("arch=riscv64", b"exit\n"),
        ],
    );
    assert!(
        o.stdout.contains("typed-42"),
        "arithmetic typed at the shell did not run:\n{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("arch=riscv64"),
        "uname typed at the shell did not run:\n{}",
        o.stdout
    );
    assert_eq!(o.status, Some(0), "stderr: {}", o.stderr);
}
