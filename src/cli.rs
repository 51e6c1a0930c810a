//! The command line: `rivet run`, `rivet boot`, `rivet image`, and QEMU's spellings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rivet_machines::config::{Aia, MAX_AIA_GUESTS};
use rivet_machines::isa::{Ext, IsaConfig, IsaError, MmuType};
use rivet_machines::MachineKind;

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
    Run(Box<RunArgs>),
    /// Boot a reference guest (default: an interactive shell), building it first when
    /// it is not cached.
    Boot(BootArgs),
    /// Build reference guest images from Debian's riscv64 packages.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

/// Each hart's code cache in MiB unless `--jit-cache-mib` says otherwise.
pub const DEFAULT_JIT_CACHE_MIB: u32 = 128;
/// Largest code cache a hart may have, in MiB (`--jit-cache-mib`, QEMU's `tb-size`).
pub const MAX_JIT_CACHE_MIB: u32 = 4096;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Board to emulate and its properties (QEMU's -M): `virt[,aia=none|aplic|aplic-imsic]
    /// [,aia-guests=N][,acpi=off][,dumpdtb=FILE]` or `spike`.
    #[arg(long, value_name = "NAME[,PROP=VALUE]...", default_value = "virt", value_parser = parse_machine)]
    pub machine: MachineArg,
    /// CPU model and properties: `rv64` or `max`, then extensions (`h=on`, `zba=off`)
    /// and satp modes (`sv57=off`) as QEMU's -cpu takes them.
    #[arg(long, value_name = "MODEL[,PROP=VALUE]...", default_value = "rv64", value_parser = parse_cpu)]
    pub cpu: IsaConfig,
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
    #[arg(long, default_value_t = crate::engine::DEFAULT_THRESHOLD, value_parser = clap::value_parser!(u32).range(1..))]
    pub jit_threshold: u32,
    /// Compile hot blocks on the hart's own thread, the moment they turn hot, instead
    /// of on a compiler thread: slower, but when code switches to compiled is then
    /// deterministic.
    #[arg(long)]
    pub jit_sync: bool,
    /// Size of each hart's code cache in MiB (QEMU's tb-size); compiled code is
    /// flushed when it is three quarters full.
    #[arg(long, default_value_t = DEFAULT_JIT_CACHE_MIB, value_parser = clap::value_parser!(u32).range(1..=MAX_JIT_CACHE_MIB as i64))]
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
    /// Board and properties, as for `rivet run` (e.g. `virt,aia=aplic-imsic,aia-guests=2`
    /// runs the nested guest on KVM's in-kernel AIA).
    #[arg(long, value_name = "NAME[,PROP=VALUE]...", default_value = "virt", value_parser = parse_machine)]
    pub machine: MachineArg,
    /// Print execution statistics at exit.
    #[arg(long)]
    pub stats: bool,
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

/// The board `--machine` chose, with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineArg {
    pub kind: MachineKind,
    pub aia: Aia,
    /// QEMU's `dumpdtb=FILE`: the same as `--dump-dtb FILE`.
    pub dump_dtb: Option<PathBuf>,
}

impl Default for MachineArg {
    /// `--machine virt`.
    fn default() -> Self {
        Self {
            kind: MachineKind::Virt,
            aia: Aia::None,
            dump_dtb: None,
        }
    }
}

/// What `-accel tcg[,...]` asks of Rivet's JIT, which stands in for QEMU's TCG.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accel {
    /// `tb-size=N`: each hart's code cache in MiB (`--jit-cache-mib`); `None` for the
    /// default (QEMU's `tb-size=0`).
    pub tb_size_mib: Option<u32>,
}

/// A `--cpu`, `--machine` or `-accel` value Rivet cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropError {
    #[error("Unknown CPU model '{0}' (Rivet has rv64 and max)")]
    UnknownCpu(String),
    #[error("CPU model 'host' needs KVM, which Rivet does not use; use rv64 or max")]
    HostCpu,
    #[error("Unknown CPU property '{0}'")]
    UnknownCpuProperty(String),
    #[error("Property '{0}' needs a value ({0}=on or {0}=off)")]
    NeedsValue(String),
    #[error("'{value}' is not a value for {prop} (on, off, true, false, yes or no)")]
    NotASwitch { prop: String, value: String },
    #[error("Rivet does not support {prop}={value}")]
    NotSupported { prop: String, value: String },
    #[error(transparent)]
    Isa(#[from] IsaError),
    #[error("Extension '{ext}' cannot be turned off: the boards need {of}")]
    Implied { ext: String, of: &'static str },
    #[error(
        "Extension '{0}' comes with the machine's AIA interrupt controllers: use -M \
         virt,aia=aplic-imsic"
    )]
    ByMachine(String),
    #[error("Turning sv39 off leaves the harts no virtual-memory mode")]
    NoSatpMode,
    #[error("Cannot turn {off} off while {on} is on: a hart with {on} has every smaller mode")]
    SatpConflict { off: &'static str, on: &'static str },
    #[error("Unknown machine '{0}' (Rivet has virt and spike)")]
    UnknownMachine(String),
    #[error("Unknown property '{prop}' for the {machine} machine")]
    UnknownMachineProperty { machine: &'static str, prop: String },
    #[error("The spike machine has no properties ('{0}' given)")]
    SpikeProperty(String),
    #[error("Unknown AIA type '{0}' (none, aplic or aplic-imsic)")]
    UnknownAia(String),
    #[error("The aia-guests value '{0}' is not a number from 0 to {MAX_AIA_GUESTS}")]
    AiaGuests(String),
    #[error("IMSIC guest files (aia-guests={0}) need aia=aplic-imsic")]
    AiaGuestsNeedImsic(u8),
    #[error(
        "Accelerator '{0}' is not available: Rivet runs guests in software, its JIT taking \
         the place of QEMU's tcg (use -accel tcg)"
    )]
    Accelerator(String),
    #[error("Unknown property '{0}' for -accel tcg")]
    UnknownAccelProperty(String),
    #[error("The tb-size value '{0}' is not a number of MiB from 0 to {MAX_JIT_CACHE_MIB}")]
    TbSize(String),
}

/// Splits a value in QEMU's option syntax, `first,key=value,...`, into its items; `,,`
/// stands for a comma inside an item (QEMU's QemuOpts rule). Empty items are dropped.
fn split_items(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' if chars.peek() == Some(&',') => {
                chars.next();
                item.push(',');
            }
            ',' => items.push(std::mem::take(&mut item)),
            c => item.push(c),
        }
    }
    items.push(item);
    items.retain(|i| !i.is_empty());
    items
}

/// QEMU's boolean values (`qapi_bool_parse`).
fn switch(prop: &str, value: &str) -> Result<bool, PropError> {
    match value {
        "on" | "true" | "yes" | "y" => Ok(true),
        "off" | "false" | "no" | "n" => Ok(false),
        _ => Err(PropError::NotASwitch {
            prop: prop.into(),
            value: value.into(),
        }),
    }
}

fn not_supported(prop: &str, value: &str) -> PropError {
    PropError::NotSupported {
        prop: prop.into(),
        value: value.into(),
    }
}

/// Extensions QEMU's RISC-V CPUs have as properties (target/riscv/cpu.c: the MISA
/// letters, `riscv_cpu_extensions`, the vendor and deprecated capitalised spellings)
/// that Rivet's harts do not implement, and the satp mode `sv64`, which no spec defines
/// yet. `=off` is what Rivet has; `=on` is refused.
#[rustfmt::skip]
const QEMU_EXTENSIONS: &[&str] = &[
    "e", "v", "b",
    "zicfilp", "zicfiss", "zimop", "zcmop", "zacas", "zama16b", "zabha", "ztso",
    "zfbfmin", "zfh", "zfhmin", "zdinx", "zfinx", "zhinx", "zhinxmin",
    "zve32f", "zve32x", "zve64f", "zve64d", "zve64x", "zvfbfmin", "zvfbfwma", "zvfh",
    "zvfhmin", "zvbb", "zvbc", "zvkb", "zvkg", "zvkned", "zvknha", "zvknhb", "zvksed",
    "zvksh", "zvkt", "zvkn", "zvknc", "zvkng", "zvks", "zvksc", "zvksg",
    "zbkb", "zbkc", "zbkx", "zk", "zkn", "zknd", "zkne", "zknh", "zkr", "zks", "zksed",
    "zksh", "zkt",
    "zce", "zcf", "zcb", "zcmp", "zcmt",
    "sscofpmf", "smcntrpmf", "smcsrind", "smcdeleg", "sscsrind", "ssccfg", "smctr",
    "ssctr", "ssnpm", "sspm", "supm", "smaia", "smdbltrp", "smepmp", "smrnmi", "smmpm",
    "smnpm", "smstateen", "ssaia", "ssdbltrp", "svvptc", "x-svukte",
    "xtheadba", "xtheadbb", "xtheadbs", "xtheadcmo", "xtheadcondmov", "xtheadfmemidx",
    "xtheadfmv", "xtheadmac", "xtheadmemidx", "xtheadmempair", "xtheadsync",
    "xventanacondops",
    "sv64",
];

/// QEMU extension properties naming part of (or, for `g`, a group of) extensions the
/// boards cannot run without: `=on` changes nothing, `=off` is refused.
const IMPLIED_EXTENSIONS: &[(&str, &str)] = &[
    ("zmmul", "m"),
    ("zaamo", "a"),
    ("zalrsc", "a"),
    ("zca", "c"),
    ("zcd", "c"),
    ("g", "i, m, a, f, d, zicsr and zifencei"),
];

/// QEMU CPU properties that are not extensions and that Rivet's harts have no knob
/// for (vector lengths, ID registers, spec versions, debug triggers), and Svade: the
/// harts take Svade's page faults while menvcfg.ADUE is clear and update A/D (Svadu)
/// when it is set, with no switch between.
#[rustfmt::skip]
const QEMU_CPU_SETTINGS: &[&str] = &[
    "vlen", "elen", "vext_spec", "priv_spec", "mvendorid", "marchid", "mimpid", "debug",
    "short-isa-string", "rvv_ta_all_1s", "rvv_ma_all_1s", "rvv_vl_half_avl", "resetvec",
    "svade",
];

/// Parses `--cpu MODEL[,PROP=VALUE...]` (QEMU's `-cpu`) into the harts' ISA.
///
/// `rv64` and `max` are both every extension Rivet implements ([`IsaConfig::default`]);
/// properties then switch extensions on and off by name and choose the largest satp
/// mode. A property QEMU has but Rivet cannot honour is refused, never ignored.
pub fn parse_cpu(s: &str) -> Result<IsaConfig, PropError> {
    let mut items = split_items(s).into_iter();
    let model = items.next().unwrap_or_default();
    let mut isa = match model.as_str() {
        "rv64" | "max" => IsaConfig::default(),
        "host" => return Err(PropError::HostCpu),
        _ => return Err(PropError::UnknownCpu(model)),
    };
    let mut satp = BTreeMap::new();
    for item in items {
        // QEMU's -cpu takes key=value only (cpu_common_parse_features).
        let Some((prop, value)) = item.split_once('=') else {
            return Err(PropError::NeedsValue(item));
        };
        cpu_property(&mut isa, &mut satp, prop, value)?;
    }
    isa.mmu = largest_satp_mode(isa.mmu, &satp)?;
    Ok(isa)
}

/// Applies one `-cpu` property; satp modes are collected in `satp` (last setting
/// wins) and resolved once all are known.
fn cpu_property(
    isa: &mut IsaConfig,
    satp: &mut BTreeMap<MmuType, bool>,
    prop: &str,
    value: &str,
) -> Result<(), PropError> {
    if let Some(ext) = Ext::from_name(prop) {
        if switch(prop, value)? {
            if IsaConfig::BOARD_EXTENSIONS.contains(&ext) {
                return Err(PropError::ByMachine(prop.to_string()));
            }
            isa.enable(ext);
        } else {
            isa.disable(ext)?;
        }
        return Ok(());
    }
    // QEMU still accepts the capitalised spellings of a few (`Zfh`).
    let name = prop.to_ascii_lowercase();
    let mode = [MmuType::Sv39, MmuType::Sv48, MmuType::Sv57]
        .into_iter()
        .find(|m| m.name() == name);
    if let Some(mode) = mode {
        satp.insert(mode, switch(prop, value)?);
    } else if QEMU_EXTENSIONS.contains(&name.as_str()) {
        if switch(prop, value)? {
            return Err(not_supported(prop, value));
        }
    } else if let Some((_, of)) = IMPLIED_EXTENSIONS.iter().find(|(n, _)| *n == name) {
        if !switch(prop, value)? {
            return Err(PropError::Implied { ext: name, of });
        }
    } else if name == "mmu" || name == "pmp" {
        // The harts always translate through satp and check PMP.
        if !switch(prop, value)? {
            return Err(not_supported(prop, value));
        }
    } else if name == "pmu-mask" || name == "pmu-num" {
        // No programmable counters: mhpmcounter3..31 read as zero.
        if value != "0" {
            return Err(not_supported(prop, value));
        }
    } else if matches!(
        name.as_str(),
        "cbom_blocksize" | "cbop_blocksize" | "cboz_blocksize"
    ) {
        if value.parse::<u32>().ok() != Some(isa.cache_block_size) {
            return Err(not_supported(prop, value));
        }
    } else if QEMU_CPU_SETTINGS.contains(&name.as_str()) {
        return Err(not_supported(prop, value));
    } else {
        return Err(PropError::UnknownCpuProperty(prop.into()));
    }
    Ok(())
}

/// Resolves QEMU's `sv39`/`sv48`/`sv57` properties as QEMU does
/// (`riscv_cpu_satp_mode_finalize`): the largest mode switched on is the harts'
/// largest; with none on, the mode below the smallest one switched off is; with none
/// set, `default`. A mode cannot be off below one that is on: a hart that has SvN has
/// every smaller scheme (Priv spec 12.5-12.6).
fn largest_satp_mode(
    default: MmuType,
    satp: &BTreeMap<MmuType, bool>,
) -> Result<MmuType, PropError> {
    let largest_on = satp.iter().filter(|(_, on)| **on).map(|(m, _)| *m).max();
    if let Some(on) = largest_on {
        if let Some((off, _)) = satp.iter().find(|(m, on_)| !**on_ && **m < on) {
            return Err(PropError::SatpConflict {
                off: off.name(),
                on: on.name(),
            });
        }
        return Ok(on);
    }
    match satp.keys().min() {
        None => Ok(default),
        Some(MmuType::Sv39) => Err(PropError::NoSatpMode),
        Some(MmuType::Sv48) => Ok(MmuType::Sv39),
        Some(MmuType::Sv57) => Ok(MmuType::Sv48),
    }
}

/// Parses `--machine NAME[,PROP=VALUE...]` (QEMU's `-M`/`-machine`). The name may come
/// first or as `type=NAME`; it defaults to virt. As in QEMU, a bare `flag` is
/// `flag=on`.
pub fn parse_machine(s: &str) -> Result<MachineArg, PropError> {
    let mut name = None;
    let mut props = Vec::new();
    for (i, item) in split_items(s).into_iter().enumerate() {
        match item.split_once('=') {
            Some(("type", v)) => name = Some(v.to_string()),
            Some((k, v)) => props.push((k.to_string(), v.to_string())),
            None if i == 0 => name = Some(item),
            None => props.push((item, "on".into())),
        }
    }
    let kind = match name.as_deref().unwrap_or("virt") {
        "virt" => MachineKind::Virt,
        "spike" => MachineKind::Spike,
        other => return Err(PropError::UnknownMachine(other.into())),
    };
    let mut m = MachineArg {
        kind,
        ..MachineArg::default()
    };
    if let Some((prop, _)) = props.first().filter(|_| kind == MachineKind::Spike) {
        return Err(PropError::SpikeProperty(prop.clone()));
    }
    let mut aia = Aia::None;
    let mut guests = 0u8;
    for (prop, value) in &props {
        match prop.as_str() {
            "aia" => {
                aia = match value.as_str() {
                    "none" => Aia::None,
                    "aplic" => Aia::Aplic,
                    "aplic-imsic" => Aia::AplicImsic { guests: 0 },
                    _ => return Err(PropError::UnknownAia(value.clone())),
                }
            }
            "aia-guests" => {
                guests = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= MAX_AIA_GUESTS)
                    .ok_or_else(|| PropError::AiaGuests(value.clone()))?;
            }
            // Rivet builds device trees only. QEMU's acpi is on/off/auto.
            "acpi" if value == "auto" => {}
            "acpi" | "aclint" | "iommu-sys" => {
                if switch(prop, value)? {
                    return Err(not_supported(prop, value));
                }
            }
            "dumpdtb" => m.dump_dtb = Some(PathBuf::from(value)),
            // QEMU's older spelling of -accel: a list to try in order.
            "accel" => {
                for name in value.split(':') {
                    accel_name(name)?;
                }
            }
            _ => {
                return Err(PropError::UnknownMachineProperty {
                    machine: "virt",
                    prop: prop.clone(),
                })
            }
        }
    }
    m.aia = match aia {
        Aia::AplicImsic { .. } => Aia::AplicImsic { guests },
        _ if guests > 0 => return Err(PropError::AiaGuestsNeedImsic(guests)),
        other => other,
    };
    Ok(m)
}

fn accel_name(name: &str) -> Result<(), PropError> {
    if name == "tcg" {
        Ok(())
    } else {
        Err(PropError::Accelerator(name.into()))
    }
}

/// Parses QEMU's `-accel NAME[,PROP=VALUE...]`. Only `tcg` is available: Rivet's
/// interpreter and JIT are its equivalent.
pub fn parse_accel(s: &str) -> Result<Accel, PropError> {
    let mut name = None;
    let mut props = Vec::new();
    for (i, item) in split_items(s).into_iter().enumerate() {
        match item.split_once('=') {
            Some(("accel", v)) => name = Some(v.to_string()),
            Some((k, v)) => props.push((k.to_string(), v.to_string())),
            None if i == 0 => name = Some(item),
            None => props.push((item, "on".into())),
        }
    }
    accel_name(name.as_deref().unwrap_or(""))?;
    let mut accel = Accel::default();
    for (prop, value) in props {
        match prop.as_str() {
            // Every hart already runs on its own thread.
            "thread" if value == "multi" => {}
            "thread" => return Err(not_supported(&prop, &value)),
            "tb-size" => {
                accel.tb_size_mib = match value.parse::<u32>() {
                    Ok(0) => None,
                    Ok(n) if n <= MAX_JIT_CACHE_MIB => Some(n),
                    _ => return Err(PropError::TbSize(value)),
                }
            }
            "one-insn-per-tb" => {
                if switch(&prop, &value)? {
                    return Err(not_supported(&prop, &value));
                }
            }
            _ => return Err(PropError::UnknownAccelProperty(prop)),
        }
    }
    Ok(accel)
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
    let mut out = Vec::new();
    // QEMU merges every -M into one set of machine properties; the last -cpu wins.
    let mut machine_name = None;
    let mut machine_props = Vec::new();
    let mut cpu = None;
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
                for (i, item) in split_items(&value(a)?).into_iter().enumerate() {
                    match item.split_once('=') {
                        Some(("type", v)) => machine_name = Some(v.to_string()),
                        None if i == 0 => machine_name = Some(item),
                        _ => machine_props.push(item),
                    }
                }
            }
            "cpu" => cpu = Some(value(a)?),
            "accel" => {
                let v = value(a)?;
                let accel = parse_accel(&v).map_err(|e| format!("-accel {v}: {e}"))?;
                if let Some(mib) = accel.tb_size_mib {
                    out.extend(["--jit-cache-mib".into(), mib.to_string()]);
                }
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
            _ => return Err(format!("unknown QEMU option '{a}'")),
        }
    }
    let mut head = vec![args[0].clone(), "run".to_string()];
    if machine_name.is_some() || !machine_props.is_empty() {
        let items = machine_name.into_iter().chain(machine_props);
        let escaped: Vec<String> = items.map(|i| i.replace(',', ",,")).collect();
        head.extend(["--machine".into(), escaped.join(",")]);
    }
    if let Some(cpu) = cpu {
        head.extend(["--cpu".into(), cpu]);
    }
    head.extend(out);
    Ok(head)
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

    fn isa_without(exts: &[Ext]) -> IsaConfig {
        let mut isa = IsaConfig::default();
        for e in exts {
            isa.disable(*e).unwrap();
        }
        isa
    }

    #[test]
    fn cpu_models() {
        assert_eq!(parse_cpu("rv64"), Ok(IsaConfig::default()));
        assert_eq!(parse_cpu("max"), Ok(IsaConfig::default()));
        assert_eq!(parse_cpu("host"), Err(PropError::HostCpu));
        assert!(PropError::HostCpu.to_string().contains("KVM"));
        assert_eq!(
            parse_cpu("sifive-u54,h=on"),
            Err(PropError::UnknownCpu("sifive-u54".into()))
        );
        assert_eq!(parse_cpu(""), Err(PropError::UnknownCpu("".into())));
    }

    #[test]
    fn h_is_switched_by_its_property() {
        // H is on by default, as in QEMU's rv64; the property turns it off.
        assert!(parse_cpu("rv64").unwrap().has(Ext::H));
        let off = parse_cpu("rv64,h=off").unwrap();
        let on = parse_cpu("rv64,h=on").unwrap();
        assert!(on.has(Ext::H) && !off.has(Ext::H));
        assert!(
            on.isa_string().starts_with("rv64imafdch_"),
            "{}",
            on.isa_string()
        );
        assert!(
            off.isa_string().starts_with("rv64imafdc_"),
            "{}",
            off.isa_string()
        );
        let h = 1 << (b'h' - b'a');
        assert_eq!(on.misa(), off.misa() | h);
        assert_eq!(off.misa() & h, 0);
        // The last setting of a property wins, as in QEMU.
        assert!(!parse_cpu("max,h=on,h=off").unwrap().has(Ext::H));
    }

    #[test]
    fn every_extension_is_a_property() {
        for ext in Ext::ALL {
            if IsaConfig::BOARD_EXTENSIONS.contains(&ext) {
                // Smaia and Ssaia come with -M virt,aia=...: refused as CPU properties.
                assert_eq!(
                    parse_cpu(&format!("rv64,{ext}=on")),
                    Err(PropError::ByMachine(ext.name().to_string()))
                );
                assert!(!parse_cpu(&format!("rv64,{ext}=off")).unwrap().has(ext));
                continue;
            }
            let on = parse_cpu(&format!("rv64,{ext}=on")).unwrap();
            assert!(on.has(ext), "{ext}=on");
            let off = parse_cpu(&format!("rv64,{ext}=off"));
            match IsaConfig::default().disable(ext) {
                Ok(()) => assert!(!off.unwrap().has(ext), "{ext}=off"),
                Err(e) => assert_eq!(off, Err(PropError::Isa(e)), "{ext}=off"),
            }
        }
    }

    #[test]
    fn switch_spellings() {
        for v in ["on", "true", "yes", "y"] {
            assert!(
                parse_cpu(&format!("rv64,zba=off,zba={v}"))
                    .unwrap()
                    .has(Ext::Zba),
                "{v}"
            );
        }
        for v in ["off", "false", "no", "n"] {
            assert!(
                !parse_cpu(&format!("rv64,zba={v}")).unwrap().has(Ext::Zba),
                "{v}"
            );
        }
        assert_eq!(
            parse_cpu("rv64,zba=maybe"),
            Err(PropError::NotASwitch {
                prop: "zba".into(),
                value: "maybe".into()
            })
        );
        assert_eq!(
            parse_cpu("rv64,zba"),
            Err(PropError::NeedsValue("zba".into()))
        );
        // QEMU's capitalised spellings and several properties at once.
        assert_eq!(
            parse_cpu("rv64,Zfa=off,zbc=false,sstc=no").unwrap(),
            isa_without(&[Ext::Zfa, Ext::Zbc, Ext::Sstc])
        );
    }

    #[test]
    fn cpu_property_errors_name_the_property() {
        let unknown = parse_cpu("rv64,zzz=on").unwrap_err();
        assert_eq!(unknown, PropError::UnknownCpuProperty("zzz".into()));
        assert!(unknown.to_string().contains("'zzz'"));
        for (spec, prop) in [
            ("rv64,v=on", "v=on"),
            ("rv64,zvfh=on", "zvfh=on"),
            ("rv64,Zfh=true", "Zfh=true"),
            ("rv64,svade=off", "svade=off"),
            ("rv64,svade=on", "svade=on"),
            ("rv64,sv64=on", "sv64=on"),
            ("rv64,vlen=256", "vlen=256"),
            ("rv64,mmu=off", "mmu=off"),
            ("rv64,pmp=off", "pmp=off"),
            ("rv64,pmu-mask=0x78", "pmu-mask=0x78"),
            ("rv64,cboz_blocksize=128", "cboz_blocksize=128"),
        ] {
            let e = parse_cpu(spec).unwrap_err();
            assert!(matches!(e, PropError::NotSupported { .. }), "{spec}: {e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains("does not support") && msg.contains(prop),
                "{msg}"
            );
        }
        let required = parse_cpu("rv64,m=off").unwrap_err();
        assert_eq!(required, PropError::Isa(IsaError::Required(Ext::M)));
        assert!(required.to_string().contains("'m'"));
        for spec in ["rv64,zicsr=off", "rv64,s=off", "rv64,c=no"] {
            assert!(matches!(parse_cpu(spec), Err(PropError::Isa(_))), "{spec}");
        }
        for (spec, ext, of) in [
            ("rv64,zca=off", "zca", "c"),
            ("rv64,g=off", "g", "i, m, a, f, d, zicsr and zifencei"),
        ] {
            let e = parse_cpu(spec).unwrap_err();
            assert_eq!(
                e,
                PropError::Implied {
                    ext: ext.into(),
                    of
                }
            );
            assert!(e.to_string().contains(&format!("'{ext}'")), "{e}");
        }
    }

    #[test]
    fn settings_rivet_already_has_are_accepted() {
        let spec = "rv64,v=off,zfh=off,zvfh=false,svvptc=off,sv64=off,x-svukte=off,zca=on,\
                    zmmul=on,g=on,mmu=on,pmp=on,pmu-mask=0,cbom_blocksize=64";
        assert_eq!(parse_cpu(spec), Ok(IsaConfig::default()));
    }

    #[test]
    fn satp_modes_follow_qemu() {
        let mmu = |spec: &str| parse_cpu(spec).map(|isa| isa.mmu);
        assert_eq!(mmu("rv64"), Ok(MmuType::Sv57));
        assert_eq!(mmu("rv64,sv57=off"), Ok(MmuType::Sv48));
        assert_eq!(mmu("rv64,sv48=off"), Ok(MmuType::Sv39));
        assert_eq!(mmu("rv64,sv48=off,sv57=off"), Ok(MmuType::Sv39));
        assert_eq!(mmu("rv64,sv48=on"), Ok(MmuType::Sv48));
        assert_eq!(mmu("rv64,sv39=on"), Ok(MmuType::Sv39));
        assert_eq!(mmu("rv64,sv39=on,sv57=on"), Ok(MmuType::Sv57));
        assert_eq!(mmu("rv64,sv48=on,sv57=off"), Ok(MmuType::Sv48));
        assert_eq!(mmu("rv64,sv57=off,sv57=on"), Ok(MmuType::Sv57));
        assert_eq!(mmu("rv64,sv39=off"), Err(PropError::NoSatpMode));
        assert_eq!(mmu("rv64,sv39=off,sv48=off"), Err(PropError::NoSatpMode));
        assert_eq!(
            mmu("rv64,sv48=off,sv57=on"),
            Err(PropError::SatpConflict {
                off: "sv48",
                on: "sv57"
            })
        );
        assert_eq!(
            mmu("rv64,sv39=off,sv48=on"),
            Err(PropError::SatpConflict {
                off: "sv39",
                on: "sv48"
            })
        );
    }

    #[test]
    fn machines_and_their_properties() {
        let virt = MachineArg::default();
        assert_eq!(parse_machine("virt"), Ok(virt.clone()));
        assert_eq!(parse_machine("type=virt"), Ok(virt.clone()));
        assert_eq!(parse_machine("accel=tcg"), Ok(virt.clone()));
        assert_eq!(
            parse_machine("virt,aia=none,acpi=off,aclint=off,iommu-sys=off,accel=tcg"),
            Ok(virt.clone())
        );
        assert_eq!(parse_machine("virt,acpi=auto"), Ok(virt.clone()));
        let spike = parse_machine("spike").unwrap();
        assert_eq!(spike.kind, MachineKind::Spike);
        assert_eq!(parse_machine("virt,aia=aplic").unwrap().aia, Aia::Aplic);
        // aia-guests may come before aia, as QEMU sets properties independently.
        assert_eq!(
            parse_machine("virt,aia-guests=7,aia=aplic-imsic")
                .unwrap()
                .aia,
            Aia::AplicImsic { guests: 7 }
        );
        assert_eq!(
            parse_machine("virt,aia=aplic-imsic").unwrap().aia,
            Aia::AplicImsic { guests: 0 }
        );
        // dumpdtb, with `,,` for a comma in the file name.
        assert_eq!(
            parse_machine("virt,dumpdtb=/tmp/a,,b.dtb")
                .unwrap()
                .dump_dtb,
            Some(PathBuf::from("/tmp/a,b.dtb"))
        );
    }

    #[test]
    fn machine_property_errors() {
        let err = |spec: &str| parse_machine(spec).unwrap_err();
        let foo = err("virt,foo=bar");
        assert_eq!(
            foo,
            PropError::UnknownMachineProperty {
                machine: "virt",
                prop: "foo".into()
            }
        );
        assert!(foo.to_string().contains("'foo'"));
        assert_eq!(
            err("sifive_u"),
            PropError::UnknownMachine("sifive_u".into())
        );
        assert_eq!(
            err("spike,aia=aplic"),
            PropError::SpikeProperty("aia".into())
        );
        assert_eq!(
            err("spike,dumpdtb=x.dtb"),
            PropError::SpikeProperty("dumpdtb".into())
        );
        assert_eq!(err("virt,aia=msi"), PropError::UnknownAia("msi".into()));
        assert_eq!(
            err("virt,aia=aplic-imsic,aia-guests=8"),
            PropError::AiaGuests("8".into())
        );
        assert_eq!(
            err("virt,aia=aplic-imsic,aia-guests=-1"),
            PropError::AiaGuests("-1".into())
        );
        assert_eq!(err("virt,aia-guests=2"), PropError::AiaGuestsNeedImsic(2));
        assert_eq!(
            err("virt,aia=aplic,aia-guests=2"),
            PropError::AiaGuestsNeedImsic(2)
        );
        // A bare flag is flag=on.
        for spec in ["virt,acpi=on", "virt,acpi", "virt,aclint=on"] {
            assert!(
                matches!(err(spec), PropError::NotSupported { .. }),
                "{spec}"
            );
        }
        assert!(matches!(
            err("virt,acpi=maybe"),
            PropError::NotASwitch { .. }
        ));
        assert_eq!(
            err("virt,accel=kvm:tcg"),
            PropError::Accelerator("kvm".into())
        );
    }

    #[test]
    fn accelerators() {
        assert_eq!(parse_accel("tcg"), Ok(Accel::default()));
        assert_eq!(parse_accel("accel=tcg,thread=multi"), Ok(Accel::default()));
        assert_eq!(parse_accel("tcg,tb-size=0"), Ok(Accel::default()));
        assert_eq!(
            parse_accel("tcg,tb-size=512,one-insn-per-tb=off"),
            Ok(Accel {
                tb_size_mib: Some(512)
            })
        );
        for name in ["kvm", "hvf", "whpx", ""] {
            assert_eq!(
                parse_accel(&format!("{name},kernel-irqchip=on")),
                Err(PropError::Accelerator(name.into()))
            );
        }
        assert!(PropError::Accelerator("kvm".into())
            .to_string()
            .contains("'kvm'"));
        assert!(matches!(
            parse_accel("tcg,thread=single"),
            Err(PropError::NotSupported { .. })
        ));
        assert!(matches!(
            parse_accel("tcg,one-insn-per-tb=on"),
            Err(PropError::NotSupported { .. })
        ));
        assert_eq!(
            parse_accel("tcg,tb-size=5000"),
            Err(PropError::TbSize("5000".into()))
        );
        assert_eq!(
            parse_accel("tcg,split-wx=on"),
            Err(PropError::UnknownAccelProperty("split-wx".into()))
        );
    }

    #[test]
    fn qemu_cpu_machine_and_accel_translate() {
        let got = translate_qemu(&s(&[
            "rivet",
            "-machine",
            "virt,aia=aplic-imsic,aia-guests=2",
            "-cpu",
            "rv64,zba=off",
            "-accel",
            "tcg,thread=multi,tb-size=64",
            "-M",
            "dumpdtb=/tmp/x,,y.dtb",
            "-kernel",
            "Image",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            s(&[
                "rivet",
                "run",
                "--machine",
                "virt,aia=aplic-imsic,aia-guests=2,dumpdtb=/tmp/x,,y.dtb",
                "--cpu",
                "rv64,zba=off",
                "--jit-cache-mib",
                "64",
                "--kernel",
                "Image",
            ])
        );
        // The translation parses to what the QEMU spelling asked for.
        let cli = Cli::try_parse_from(&got).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not a run command");
        };
        assert_eq!(run.machine.aia, Aia::AplicImsic { guests: 2 });
        assert_eq!(run.machine.dump_dtb, Some(PathBuf::from("/tmp/x,y.dtb")));
        assert_eq!(run.cpu, isa_without(&[Ext::Zba]));
        assert_eq!(run.jit_cache_mib, 64);

        // type= anywhere, a later name overriding an earlier one, the last -cpu winning.
        let got = translate_qemu(&s(&[
            "rivet",
            "-M",
            "acpi=off,type=spike",
            "-M",
            "virt",
            "-cpu",
            "max",
            "-cpu",
            "rv64,h=on",
            "-accel",
            "tcg",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            s(&[
                "rivet",
                "run",
                "--machine",
                "virt,acpi=off",
                "--cpu",
                "rv64,h=on"
            ])
        );

        let err = |v: &[&str]| translate_qemu(&s(v)).unwrap().unwrap_err();
        assert!(err(&["rivet", "-accel", "kvm"]).contains("'kvm'"));
        assert!(err(&["rivet", "-accel", "tcg,tb-size=x"]).contains("tb-size=x"));
        assert!(err(&["rivet", "-cpu"]).contains("-cpu"));
        assert!(err(&["rivet", "-accel"]).contains("-accel"));
    }

    #[test]
    fn native_options_parse_and_default() {
        let run = |args: &[&str]| {
            let mut argv = vec!["rivet", "run"];
            argv.extend(args);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Run(r)) => Ok(*r),
                Ok(_) => panic!("not a run command"),
                Err(e) => Err(e),
            }
        };
        let r = run(&[]).unwrap();
        assert_eq!(
            (r.machine, r.cpu),
            (MachineArg::default(), IsaConfig::default())
        );
        let r = run(&["--machine", "spike", "--cpu", "max,zicond=off"]).unwrap();
        assert_eq!(r.machine.kind, MachineKind::Spike);
        assert_eq!(r.cpu, isa_without(&[Ext::Zicond]));
        let e = run(&["--cpu", "rv64,zzz=on"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("zzz"));
    }
}
