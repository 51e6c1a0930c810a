//! Bad host input: a one-line message naming the file or option at fault, exit status
//! 2, never a panic or a backtrace.

mod common;

use std::time::Duration;

use common::{rivet, run_with_timeout};

fn expect_usage_error(args: &[&str], must_mention: &str) {
    let mut cmd = rivet();
    cmd.args(args);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(
        o.status,
        Some(2),
        "{args:?}: status {:?}, stderr: {}",
        o.status,
        o.stderr
    );
    let err = o.stderr.trim_end();
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
    assert!(err.starts_with("rivet: "), "{args:?}: {err}");
    assert!(
        err.contains(must_mention),
        "{args:?}: '{err}' does not name '{must_mention}'"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

fn temp(name: &str, data: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rivet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn missing_kernel_is_named() {
    expect_usage_error(
        &["run", "--bios", "none", "--kernel", "/nonexistent/Image"],
        "/nonexistent/Image",
    );
}

#[test]
fn corrupt_kernel_is_named() {
    let elf = temp("corrupt.elf", b"\x7fELF\x02\x01\x01garbage");
    let p = elf.to_str().unwrap();
    expect_usage_error(&["run", "--bios", "none", "--kernel", p], "corrupt.elf");
}

#[test]
fn unreadable_initrd_is_named() {
    let k = temp("k.bin", &[0x13, 0, 0, 0]);
    expect_usage_error(
        &[
            "run",
            "--bios",
            "none",
            "--kernel",
            k.to_str().unwrap(),
            "--initrd",
            "/nonexistent/initrd",
        ],
        "/nonexistent/initrd",
    );
}

#[test]
fn memory_too_small() {
    let k = temp("big.bin", &vec![0u8; 3 << 20]);
    expect_usage_error(
        &[
            "run",
            "--bios",
            "none",
            "--kernel",
            k.to_str().unwrap(),
            "--memory",
            "2M",
        ],
        "memory",
    );
}

#[test]
fn bad_memory_size() {
    expect_usage_error(&["run", "--memory", "lots"], "lots");
}

#[test]
fn unknown_options() {
    expect_usage_error(&["run", "--frobnicate"], "--frobnicate");
    expect_usage_error(&["-M", "virt", "-usb"], "-usb");
}

#[test]
fn bare_metal_program_exit_status() {
    // A raw program that writes FAIL(7) to the SiFive test device: rivet exits with 7.
    // lui t0, 0x100 ; lui t1, 0x70 ; addi t1, t1, 0x333 ; add t1,t1,... (0x73333)
    let words: [u32; 5] = [
        0x001002b7, // lui   t0, 0x100        -> 0x100000
        0x00073337, // lui   t1, 0x73         -> 0x73000
        0x33330313, // addi  t1, t1, 0x333    -> 0x73333
        0x0062a023, // sw    t1, 0(t0)
        0x0000006f, // j     .
    ];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let k = temp("fail7.bin", &bytes);
    let mut cmd = rivet();
    cmd.args([
        "run",
        "--bios",
        "none",
        "--memory",
        "64M",
        "--kernel",
        k.to_str().unwrap(),
    ]);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(o.status, Some(7), "stderr: {}", o.stderr);
}

#[test]
fn dump_dtb_writes_a_tree_dtc_accepts() {
    let k = temp("dtb-kernel.bin", &[0x6f, 0, 0, 0]); // j .
    let out = std::env::temp_dir().join(format!("rivet-cli-{}/virt.dtb", std::process::id()));
    let mut cmd = rivet();
    cmd.args([
        "run", "--bios", "none", "--smp", "4", "--memory", "1G", "--kernel",
    ])
    .arg(&k)
    .args(["--append", "console=ttyS0"])
    .arg("--dump-dtb")
    .arg(&out);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(o.status, Some(0), "stderr: {}", o.stderr);
    let dtc = std::process::Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&out)
        .output();
    let Ok(dtc) = dtc else {
        eprintln!("SKIPPED: dtc (device-tree-compiler) missing: cannot check the dumped tree");
        assert!(std::env::var_os("CI").is_none(), "CI must have dtc");
        return;
    };
    let dts = String::from_utf8_lossy(&dtc.stdout);
    let warnings = String::from_utf8_lossy(&dtc.stderr);
    assert!(
        dtc.status.success() && warnings.trim().is_empty(),
        "dtc: {warnings}"
    );
    assert!(dts.contains("bootargs = \"console=ttyS0\""), "{dts}");
    assert_eq!(dts.matches("device_type = \"cpu\"").count(), 4, "{dts}");
    assert!(dts.contains("riscv,isa-extensions"), "{dts}");
}

#[test]
fn cpu_properties_are_checked() {
    expect_usage_error(&["-cpu", "rv64,zzz=on"], "'zzz'");
    expect_usage_error(&["run", "--cpu", "rv64,zzz=on"], "'zzz'");
    expect_usage_error(&["-cpu", "rv64,v=on"], "v=on");
    expect_usage_error(&["-cpu", "host"], "KVM");
    expect_usage_error(&["run", "--cpu", "rv64,m=off"], "'m'");
    expect_usage_error(&["run", "--cpu", "rv64,sv39=off"], "sv39");
}

#[test]
fn machine_properties_are_checked() {
    expect_usage_error(&["-M", "virt,foo=bar"], "'foo'");
    expect_usage_error(&["run", "--machine", "spike,aia=aplic"], "spike");
    expect_usage_error(&["-M", "virt,acpi=on"], "acpi=on");
    let k = temp("aia-kernel.bin", &[0x6f, 0, 0, 0]); // j .
    let k = k.to_str().unwrap();
    expect_usage_error(
        &[
            "-M",
            "virt,aia=aplic-imsic,aia-guests=8",
            "-bios",
            "none",
            "-kernel",
            k,
        ],
        "aia-guests",
    );
}

#[test]
fn only_tcg_acceleration() {
    expect_usage_error(&["-accel", "kvm", "-M", "virt"], "'kvm'");
    expect_usage_error(&["-M", "virt", "-accel", "hvf"], "'hvf'");
    expect_usage_error(&["-accel", "tcg,thread=single"], "thread=single");
}

fn temp_path(name: &str) -> String {
    let p = std::env::temp_dir().join(format!("rivet-cli-{}/{name}", std::process::id()));
    p.to_str().unwrap().to_string()
}

/// Runs `rivet` with `args` (which must make it write its device tree to `dtb` and
/// stop) and returns the tree's `riscv,isa` string.
fn dumped_isa(args: &[&str], dtb: &str) -> String {
    let k = temp("isa-kernel.bin", &[0x6f, 0, 0, 0]); // j .
    let mut cmd = rivet();
    cmd.args(args).arg("--kernel").arg(&k);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(o.status, Some(0), "{args:?}: stderr: {}", o.stderr);
    let blob = std::fs::read(dtb).unwrap();
    // A NUL-terminated string; `riscv,isa-base` ("rv64i") is a different one.
    let at = blob
        .windows(9)
        .position(|w| w == b"rv64imafd")
        .unwrap_or_else(|| panic!("{args:?}: no ISA string in the tree"));
    let len = blob[at..].iter().position(|b| *b == 0).unwrap();
    String::from_utf8(blob[at..at + len].to_vec()).unwrap()
}

#[test]
fn cpu_properties_reach_the_device_tree() {
    let dtb = temp_path("default.dtb");
    let default = dumped_isa(
        &[
            "run",
            "--machine",
            "virt",
            "--bios",
            "none",
            "--dump-dtb",
            &dtb,
        ],
        &dtb,
    );
    assert!(default.contains("_zba_"), "{default}");
    let dtb = temp_path("no-zba.dtb");
    let no_zba = dumped_isa(
        &[
            "run",
            "--machine",
            "virt",
            "--cpu",
            "rv64,zba=off",
            "--bios",
            "none",
            "--dump-dtb",
            &dtb,
        ],
        &dtb,
    );
    assert!(!no_zba.contains("zba"), "{no_zba}");
    assert_eq!(no_zba, default.replace("_zba", ""));
    // H is on by default (as in QEMU's rv64) and the property turns it off.
    assert!(default.starts_with("rv64imafdch_"), "{default}");
    let dtb = temp_path("h.dtb");
    let no_h = dumped_isa(
        &[
            "run",
            "--cpu",
            "rv64,h=off",
            "--bios",
            "none",
            "--dump-dtb",
            &dtb,
        ],
        &dtb,
    );
    assert!(no_h.starts_with("rv64imafdc_"), "{no_h}");
    // The QEMU spelling, the tree's file given as a machine property.
    let dtb = temp_path("qemu.dtb");
    let machine = format!("virt,aia=none,acpi=off,dumpdtb={dtb}");
    let qemu = dumped_isa(
        &[
            "-M",
            &machine,
            "-cpu",
            "max,zba=false",
            "-accel",
            "tcg,tb-size=64",
            "-bios",
            "none",
        ],
        &dtb,
    );
    assert_eq!(qemu, no_zba);
}
