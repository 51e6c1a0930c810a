//! The command line: `rivet run`, `rivet boot`, `rivet image`, and QEMU's spellings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rivet",
    version,
    about = "A full-system RISC-V (RV64GCH) emulator"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a machine.
    Run(RunArgs),
    /// Boot a reference guest (default: an interactive shell), building it first when
    /// it is not cached.
    Boot(BootArgs),
    /// Build reference guest images from Debian's riscv64 packages.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MachineArg {
    Virt,
    Spike,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Board to emulate.
    #[arg(long, value_enum, default_value = "virt")]
    pub machine: MachineArg,
    /// Guest RAM: a number of MiB, or with a K, M, G or T suffix.
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub memory: u64,
    /// Number of harts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: u32,
    /// M-mode firmware (OpenSBI fw_dynamic), or `none` to enter the kernel in M-mode.
    #[arg(long)]
    pub bios: Option<String>,
    /// Kernel: a Linux Image, an ELF, or a raw binary.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long)]
    pub append: Option<String>,
    /// Use this device tree blob instead of the generated one.
    #[arg(long)]
    pub dtb: Option<PathBuf>,
    /// Write the generated device tree blob to FILE and exit (QEMU's dumpdtb).
    #[arg(long, value_name = "FILE")]
    pub dump_dtb: Option<PathBuf>,
    /// A virtio block device: file=PATH,format=raw[,readonly=on].
    #[arg(long)]
    pub drive: Vec<String>,
    /// Trace execution: `insn` prints every executed instruction to stderr.
    #[arg(long)]
    pub trace: Option<String>,
    /// Print execution statistics when the machine stops.
    #[arg(long)]
    pub stats: bool,
    /// Exit when the guest reboots instead of resetting the machine.
    #[arg(long)]
    pub no_reboot: bool,
    /// Execution engine: the interpreter plus the Cranelift compiler for hot blocks
    /// (`jit`), or the interpreter alone (`interp`).
    #[arg(long, value_enum, default_value = "jit")]
    pub engine: EngineArg,
    /// Run every compiled block that does not write memory a second time in the
    /// interpreter, and stop at the first difference in architectural state.
    #[arg(long)]
    pub lockstep: bool,
    /// Interpreted runs of a block before the JIT compiles it (1: compile everything).
    /// With a compiler thread this is the base: it rises up to 8x while the thread is
    /// behind.
    #[arg(long, default_value_t = crate::jit::DEFAULT_THRESHOLD, value_parser = clap::value_parser!(u32).range(1..))]
    pub jit_threshold: u32,
    /// Compile hot blocks on the hart's own thread, the moment they turn hot, instead
    /// of on a compiler thread: slower, but when code switches to compiled is then
    /// deterministic.
    #[arg(long)]
    pub jit_sync: bool,
    /// Size of each hart's code cache in MiB (QEMU's tb-size); compiled code is
    /// flushed when it is three quarters full.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jit_cache_mib: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Interp,
    Jit,
}

#[derive(Debug, Args)]
pub struct BootArgs {
    /// Which reference guest.
    #[arg(value_enum, default_value = "shell")]
    pub scenario: ScenarioArg,
    /// Debian mirror URL (default: RIVET_DEBIAN_MIRROR, then the host's apt sources).
    #[arg(long)]
    pub mirror: Option<String>,
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub memory: u64,
    #[arg(long, default_value_t = 1)]
    pub smp: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    Boot,
    Shell,
    Nested,
    Bench,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Assemble a reference guest (firmware, kernel, initramfs) and print its paths.
    Build {
        #[arg(value_enum)]
        scenario: ScenarioArg,
        /// Also copy the files into DIR.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Debian mirror URL (default: RIVET_DEBIAN_MIRROR, then the host's apt sources).
        #[arg(long)]
        mirror: Option<String>,
    },
}

/// Parses `2G`, `512M`, `4096K`, `1T` or a bare number of MiB (QEMU's `-m` rule).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'B' => 1,
                _ => return Err(format!("unknown size suffix '{c}' in '{s}'")),
            };
            (&s[..i], m)
        }
        _ => (s, 1 << 20),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (examples: 2G, 512M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// Rewrites a QEMU command line (`-M virt -m 2G -kernel Image ...`) into `rivet run`
/// arguments, so a QEMU invocation can be pasted. Returns `None` when `args` is not in
/// QEMU form (its first argument is not a single-dash option).
pub fn translate_qemu(args: &[String]) -> Option<Result<Vec<String>, String>> {
    let first = args.get(1)?;
    if !first.starts_with('-') || first.starts_with("--") || first == "-h" || first == "-V" {
        return None;
    }
    Some(translate_qemu_options(args))
}

fn translate_qemu_options(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = vec![args[0].clone(), "run".to_string()];
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("option '{name}' needs a value"))
        };
        let opt = a.trim_start_matches('-');
        match opt {
            "M" | "machine" => {
                let v = value(a)?;
                let name = v.split(',').next().unwrap_or("").to_string();
                let name = name.strip_prefix("type=").unwrap_or(&name).to_string();
                out.extend(["--machine".into(), name]);
            }
            "m" => {
                let v = value(a)?;
                let size = v.split(',').next().unwrap_or("");
                let size = size.strip_prefix("size=").unwrap_or(size).to_string();
                out.extend(["--memory".into(), size]);
            }
            "smp" => {
                let v = value(a)?;
                let n = v
                    .split(',')
                    .find_map(|p| match p.split_once('=') {
                        Some(("cpus", n)) => Some(n.to_string()),
                        None => Some(p.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default();
                out.extend(["--smp".into(), n]);
            }
            "bios" | "kernel" | "initrd" | "append" | "dtb" | "drive" => {
                let v = value(a)?;
                out.extend([format!("--{opt}"), v]);
            }
            "no-reboot" => out.push("--no-reboot".into()),
            // Rivet's console is always stdio.
            "nographic" => {}
            "serial" | "display" | "monitor" => {
                let v = value(a)?;
                if !matches!(v.as_str(), "mon:stdio" | "stdio" | "none") {
                    return Err(format!("'{a} {v}' is not supported (the console is stdio)"));
                }
            }
            "cpu" | "accel" => {
                // Rivet emulates one CPU model (TCG-like software execution).
                value(a)?;
            }
            _ => return Err(format!("unknown QEMU option '{a}'")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("256"), Ok(256 << 20));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn qemu_command_lines_translate() {
        let got = translate_qemu(&s(&[
            "rivet",
            "-M",
            "virt",
            "-m",
            "2G",
            "-smp",
            "cpus=2",
            "-bios",
            "fw.bin",
            "-kernel",
            "Image",
            "-initrd",
            "i.gz",
            "-append",
            "console=ttyS0 quiet",
            "-nographic",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            s(&[
                "rivet",
                "run",
                "--machine",
                "virt",
                "--memory",
                "2G",
                "--smp",
                "2",
                "--bios",
                "fw.bin",
                "--kernel",
                "Image",
                "--initrd",
                "i.gz",
                "--append",
                "console=ttyS0 quiet"
            ])
        );
        assert!(translate_qemu(&s(&["rivet", "run"])).is_none());
        assert!(translate_qemu(&s(&["rivet", "-usb"])).unwrap().is_err());
        assert!(translate_qemu(&s(&["rivet", "-kernel"])).unwrap().is_err());
    }
}
