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
    boot_on("virt", smp, append, extra)
}

/// [`boot`] on the board `machine` (`--machine`).
fn boot_on(machine: &str, smp: &str, append: &str, extra: &[&str]) -> Option<common::Outcome> {
    let g = guest("boot")?;
    let mut cmd = guest_command(&g, append);
    cmd.args(["--machine", machine, "--smp", smp]).args(extra);
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
    if smp != "1" && !append.contains("quiet") {
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
/// blocks compiled again (the hart waiting for each compile, so chained exits and the
/// flush meet deterministically).
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
        .lines()
        .find_map(|l| l.split_once("flushed ")?.1.split_once(" times for code space"))
        .and_then(|(n, _)| n.parse::<u64>().ok());
    assert!(
        flushes.is_some_and(|n| n > 0),
        "no code cache flush reported; stderr:\n{}",
        o.stderr
    );
}

/// The guest's report between RIVET-IRQS-BEGIN and RIVET-IRQS-END (the boot image
/// prints it with `rivet.irqs` on the command line).
fn irq_report(o: &common::Outcome) -> &str {
    let begin = o.stdout.find("RIVET-IRQS-BEGIN");
    let end = o.stdout.find("RIVET-IRQS-END");
    match (begin, end) {
        (Some(b), Some(e)) if b < e => &o.stdout[b..e],
        _ => panic!("no interrupt report in the console:\n{}", o.stdout),
    }
}

/// Checks that `/proc/interrupts` has a column for each of `smp` harts: they all came
/// up.
fn check_cpus(report: &str, smp: &str) {
    let header = report.lines().nth(1).unwrap_or_default();
    let cpus = header
        .split_whitespace()
        .filter(|w| w.starts_with("CPU"))
        .count();
    assert_eq!(cpus.to_string(), smp, "not every hart came up:\n{report}");
}

/// The count of the `/proc/interrupts` row that mentions `name`, summed over CPUs.
fn irq_count(report: &str, name: &str) -> u64 {
    let row = report
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} row in:\n{report}"));
    row.split_whitespace()
        .skip(1)
        .map_while(|w| w.parse::<u64>().ok())
        .sum()
}

/// Linux on `-M virt,aia=aplic`: the APLIC signals the harts directly; the UART's
/// interrupts arrive through it.
fn boot_aplic(smp: &str) {
    let Some(o) = boot_on("virt,aia=aplic", smp, "console=ttyS0 quiet rivet.irqs", &[]) else {
        return;
    };
    let r = irq_report(&o);
    check_cpus(r, smp);
    assert!(
        r.contains("interrupts directly connected"),
        "APLIC did not probe in direct mode:\n{r}"
    );
    assert!(r.contains("APLIC-DIRECT"), "{r}");
    assert!(irq_count(r, "ttyS0") > 0, "no UART interrupts:\n{r}");
}

/// Linux on `-M virt,aia=aplic-imsic`: OpenSBI and Linux send IPIs through the
/// IMSICs, the APLIC forwards the UART's interrupts to them as MSIs.
fn boot_aplic_imsic(smp: &str) {
    let Some(o) = boot_on(
        "virt,aia=aplic-imsic",
        smp,
        "console=ttyS0 quiet rivet.irqs",
        &["--stats"],
    ) else {
        return;
    };
    assert!(
        o.stdout.contains("Platform IPI Device         : aia-imsic"),
        "OpenSBI does not use the IMSIC for IPIs:\n{}",
        o.stdout
    );
    let r = irq_report(&o);
    check_cpus(r, smp);
    assert!(r.contains("providing IPIs using interrupt"), "{r}");
    assert!(r.contains("APLIC-MSI"), "{r}");
    assert!(irq_count(r, "ttyS0") > 0, "no UART interrupts:\n{r}");
    if smp != "1" {
        // Function-call IPIs between the harts went through the S-level files.
        assert!(irq_count(r, "IPI1:") > 0, "{r}");
    }
    assert!(
        o.stderr.contains("rivet: aia:") && !o.stderr.contains(" 0 S-level"),
        "no interrupts claimed from S-level files:\n{}",
        o.stderr
    );
}

#[test]
fn debian_boots_on_the_aplic() {
    boot_aplic("1");
}

#[test]
fn debian_boots_on_the_aplic_with_two_harts() {
    boot_aplic("2");
}

#[test]
fn debian_boots_on_the_aplic_with_four_harts() {
    boot_aplic("4");
}

#[test]
fn debian_boots_on_the_imsic() {
    boot_aplic_imsic("1");
}

#[test]
fn debian_boots_on_the_imsic_with_two_harts() {
    boot_aplic_imsic("2");
}

#[test]
fn debian_boots_on_the_imsic_with_four_harts() {
    boot_aplic_imsic("4");
}

/// The nested reference guest: the outer Debian kernel loads kvm.ko and runs Debian's
/// QEMU with `-accel kvm`, whose inner Linux (in VS-mode, on the hypervisor extension)
/// prints its own marker; the outer guest then powers off.
fn nested(smp: &str, extra: &[&str], timeout: Duration) -> Option<common::Outcome> {
    nested_on("virt", smp, extra, timeout)
}

/// [`nested`] on the board `machine`.
fn nested_on(
    machine: &str,
    smp: &str,
    extra: &[&str],
    timeout: Duration,
) -> Option<common::Outcome> {
    let g = guest("nested")?;
    let mut cmd = guest_command(&g, "console=ttyS0 quiet");
    cmd.args(["--machine", machine, "--smp", smp, "--stats"])
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

/// KVM's in-kernel AIA on the outer IMSIC's guest interrupt files: the inner QEMU
/// runs `-M virt,aia=aplic-imsic -smp 2`, whose harts claim their interrupts from
/// guest files through `vstopei` (the guest's `stopei`) without exits.
#[test]
fn nested_kvm_guest_boots_on_guest_interrupt_files() {
    let Some(o) = nested_on(
        "virt,aia=aplic-imsic,aia-guests=5",
        "2",
        &[],
        Duration::from_secs(900),
    ) else {
        return;
    };
    assert!(
        o.stdout
            .contains("AIA available with 5 guest external interrupts"),
        "KVM did not find the guest files:\n{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("RIVET-NESTED-INNER virt,aia=aplic-imsic -smp 2"),
        "{}",
        o.stdout
    );
    // The inner kernel (not quiet) reports its IMSIC and APLIC.
    assert!(
        o.stdout.contains("riscv-imsic") && o.stdout.contains("forwarded to MSI"),
        "{}",
        o.stdout
    );
    let vs = o
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("rivet: aia: "))
        .and_then(|l| l.split(", ").nth(2))
        .and_then(|f| f.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        vs.is_some_and(|n| n > 0),
        "no interrupts claimed from guest files:\n{}",
        o.stderr
    );
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
