//! What a machine is made of: the user's choices, checked by [`MachineConfig::validate`].

use crate::isa::IsaConfig;
use rivet_devices::bus::MmioDevice;
use rivet_devices::irq::IrqLine;
use rivet_devices::ram::GuestRam;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Most harts a board accepts (QEMU virt's `VIRT_CPUS_MAX`); the PLIC window is sized
/// for two contexts per hart of this many.
pub const MAX_HARTS: usize = 512;
pub const MIN_MEMORY: u64 = 1 << 20;
pub const MAX_MEMORY: u64 = 1 << 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKind {
    /// QEMU's `virt` board layout: PLIC, CLINT, 16550 UART, virtio-mmio, RTC, syscon.
    Virt,
    /// Spike's layout for bare-metal tests: CLINT and HTIF.
    Spike,
}

/// Most IMSIC guest interrupt files per hart a virt board accepts (QEMU's
/// `VIRT_IRQCHIP_MAX_GUESTS`: the guest index has 3 bits, and 0 is the supervisor file).
pub const MAX_AIA_GUESTS: u8 = 7;

/// The interrupt controllers of the virt board (QEMU's `-M virt,aia=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aia {
    /// A PLIC, no AIA: the default, as on QEMU.
    #[default]
    None,
    /// An APLIC delivering wired interrupts directly to the harts.
    Aplic,
    /// An APLIC forwarding wired interrupts as MSIs to an IMSIC per hart, with `guests`
    /// guest interrupt files per hart for VS-mode (AIA spec ch. 3, 4).
    AplicImsic { guests: u8 },
}

impl Aia {
    /// QEMU's spelling of the `aia` property.
    pub fn name(self) -> &'static str {
        match self {
            Aia::None => "none",
            Aia::Aplic => "aplic",
            Aia::AplicImsic { .. } => "aplic-imsic",
        }
    }
}

/// The first stage a board runs in M-mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bios {
    /// The system's OpenSBI `fw_dynamic.bin` (virt), or nothing (spike).
    Default,
    /// No firmware: the kernel is entered directly in M-mode.
    None,
    /// An ELF or raw firmware file, loaded at the start of RAM.
    File(PathBuf),
}

/// Creates a virtio-mmio device for one slot, given the slot's interrupt line and the
/// guest RAM its queues live in.
pub type VirtioFactory =
    Box<dyn FnOnce(Arc<dyn IrqLine>, Arc<GuestRam>) -> Arc<dyn MmioDevice> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Hart count {0} is out of range (1 to {MAX_HARTS})")]
    Smp(usize),
    #[error("Memory size {0} bytes is not a multiple of 4 KiB between 1 MiB and 1 TiB")]
    Memory(u64),
    #[error("Nothing to boot: pass a firmware (--bios FILE) or a kernel (--kernel FILE)")]
    NothingToBoot,
    #[error("--{0} needs --kernel")]
    NeedsKernel(&'static str),
    #[error("The {0} board has no initrd support")]
    NoInitrd(&'static str),
    #[error("The spike board runs one ELF: pass --kernel or --bios FILE, not both")]
    SpikeTwoPrograms,
    #[error("The virt board has {slots} virtio-mmio slots; {wanted} devices were given")]
    TooManyVirtio { slots: usize, wanted: usize },
    #[error("The {0} board has no AIA interrupt controllers")]
    NoAia(&'static str),
    #[error("{0} IMSIC guest files per hart is more than the {MAX_AIA_GUESTS} a board can have")]
    AiaGuests(u8),
    #[error("No default firmware found (looked for {0}); pass --bios FILE, or --bios none with --kernel")]
    NoDefaultFirmware(String),
}

pub struct MachineConfig {
    pub kind: MachineKind,
    /// RAM size in bytes.
    pub memory: u64,
    /// Number of harts.
    pub smp: usize,
    pub bios: Bios,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// Kernel command line (`/chosen/bootargs`).
    pub append: Option<String>,
    /// A device tree to use instead of the generated one.
    pub dtb: Option<PathBuf>,
    /// The harts' ISA; the device tree advertises exactly this.
    pub isa: IsaConfig,
    /// The virt board's interrupt controllers.
    pub aia: Aia,
    /// `/chosen/rng-seed`. QEMU always passes one; pass `None` for a reproducible tree.
    pub rng_seed: Option<Vec<u8>>,
    /// Where the console UART (virt) or HTIF console (spike) writes.
    pub console: Box<dyn Write + Send>,
    /// Devices for the virtio-mmio slots, in slot order.
    pub virtio: Vec<VirtioFactory>,
}

impl fmt::Debug for MachineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineConfig")
            .field("kind", &self.kind)
            .field("memory", &self.memory)
            .field("smp", &self.smp)
            .field("bios", &self.bios)
            .field("kernel", &self.kernel)
            .field("initrd", &self.initrd)
            .field("append", &self.append)
            .field("dtb", &self.dtb)
            .field("isa", &self.isa)
            .field("aia", &self.aia)
            .field("virtio", &self.virtio.len())
            .finish_non_exhaustive()
    }
}

/// Where distributions install OpenSBI's generic `fw_dynamic.bin`.
pub const DEFAULT_FIRMWARE_PATHS: [&str; 3] = [
    "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
    "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin",
    "/usr/share/opensbi/lp64/generic/firmware/fw_dynamic.bin",
];

impl Default for MachineConfig {
    /// [`MachineConfig::new`] for the virt board.
    fn default() -> Self {
        Self::new(MachineKind::Virt)
    }
}

impl MachineConfig {
    /// A machine with QEMU's defaults: 128 MiB (virt) or 2 GiB (spike), one hart, the
    /// default firmware, console on stdout, a fresh RNG seed.
    pub fn new(kind: MachineKind) -> Self {
        Self {
            kind,
            memory: match kind {
                MachineKind::Virt => 128 << 20,
                MachineKind::Spike => 2 << 30,
            },
            smp: 1,
            bios: Bios::Default,
            kernel: None,
            initrd: None,
            append: None,
            dtb: None,
            isa: IsaConfig::default(),
            aia: Aia::None,
            rng_seed: host_random_seed(),
            console: Box::new(std::io::stdout()),
            virtio: Vec::new(),
        }
    }

    /// Checks the options against each other, before any file is read.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.smp == 0 || self.smp > MAX_HARTS {
            return Err(ConfigError::Smp(self.smp));
        }
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&self.memory) || !self.memory.is_multiple_of(4096) {
            return Err(ConfigError::Memory(self.memory));
        }
        match self.aia {
            Aia::None => {}
            _ if self.kind == MachineKind::Spike => return Err(ConfigError::NoAia("spike")),
            Aia::AplicImsic { guests } if guests > MAX_AIA_GUESTS => {
                return Err(ConfigError::AiaGuests(guests))
            }
            Aia::Aplic | Aia::AplicImsic { .. } => {}
        }
        if self.kernel.is_none() {
            if self.initrd.is_some() {
                return Err(ConfigError::NeedsKernel("initrd"));
            }
            if self.append.is_some() {
                return Err(ConfigError::NeedsKernel("append"));
            }
        }
        match self.kind {
            MachineKind::Virt => {
                if self.bios == Bios::None && self.kernel.is_none() {
                    return Err(ConfigError::NothingToBoot);
                }
                let slots = crate::virt::map::VIRTIO_COUNT;
                if self.virtio.len() > slots {
                    return Err(ConfigError::TooManyVirtio {
                        slots,
                        wanted: self.virtio.len(),
                    });
                }
            }
            MachineKind::Spike => {
                if self.initrd.is_some() {
                    return Err(ConfigError::NoInitrd("spike"));
                }
                match (&self.bios, &self.kernel) {
                    (Bios::File(_), Some(_)) => return Err(ConfigError::SpikeTwoPrograms),
                    (Bios::File(_), None) | (_, Some(_)) => {}
                    _ => return Err(ConfigError::NothingToBoot),
                }
            }
        }
        Ok(())
    }

    /// The firmware file to load, if any.
    pub fn firmware_path(&self) -> Result<Option<PathBuf>, ConfigError> {
        match (&self.bios, self.kind) {
            (Bios::None, _) | (Bios::Default, MachineKind::Spike) => Ok(None),
            (Bios::File(p), _) => Ok(Some(p.clone())),
            (Bios::Default, MachineKind::Virt) => DEFAULT_FIRMWARE_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .map(Some)
                .ok_or_else(|| ConfigError::NoDefaultFirmware(DEFAULT_FIRMWARE_PATHS.join(", "))),
        }
    }
}

/// 32 bytes from the host's RNG, or `None` when it cannot be read.
fn host_random_seed() -> Option<Vec<u8>> {
    use std::io::Read;
    let mut seed = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .ok()
        .map(|()| seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut c = MachineConfig::new(MachineKind::Virt);
        assert!(c.validate().is_ok());
        assert_eq!(c.rng_seed.as_ref().map(Vec::len), Some(32));
        c.smp = 0;
        assert!(matches!(c.validate(), Err(ConfigError::Smp(0))));
        c.smp = 513;
        assert!(matches!(c.validate(), Err(ConfigError::Smp(513))));
        c.smp = 512;
        c.memory = 1000;
        assert!(matches!(c.validate(), Err(ConfigError::Memory(1000))));
        c.memory = (64 << 20) + 1;
        assert!(c.validate().is_err());
        c.memory = 64 << 20;
        c.initrd = Some("initrd".into());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NeedsKernel("initrd"))
        ));
        c.initrd = None;
        c.bios = Bios::None;
        assert!(matches!(c.validate(), Err(ConfigError::NothingToBoot)));
        c.kernel = Some("k".into());
        assert!(c.validate().is_ok());
        assert_eq!(c.firmware_path().unwrap(), None);

        let mut s = MachineConfig::new(MachineKind::Spike);
        assert!(matches!(s.validate(), Err(ConfigError::NothingToBoot)));
        s.bios = Bios::File("a.elf".into());
        assert!(s.validate().is_ok());
        s.kernel = Some("b.elf".into());
        assert!(matches!(s.validate(), Err(ConfigError::SpikeTwoPrograms)));
        s.bios = Bios::Default;
        assert!(s.validate().is_ok());
        assert_eq!(s.firmware_path().unwrap(), None);
    }

    #[test]
    fn aia_choices_are_checked() {
        let mut c = MachineConfig::new(MachineKind::Virt);
        c.kernel = Some("k".into());
        assert_eq!(c.aia, Aia::None);
        c.aia = Aia::AplicImsic { guests: 3 };
        assert!(c.validate().is_ok());
        c.aia = Aia::Aplic;
        assert!(c.validate().is_ok());
        c.aia = Aia::AplicImsic { guests: 8 };
        let e = c.validate().unwrap_err();
        assert!(matches!(e, ConfigError::AiaGuests(8)));
        assert_eq!(e.to_string().lines().count(), 1);
        let mut s = MachineConfig::new(MachineKind::Spike);
        s.bios = Bios::File("a.elf".into());
        s.aia = Aia::Aplic;
        assert!(matches!(s.validate(), Err(ConfigError::NoAia("spike"))));
    }

    #[test]
    fn default_firmware_lookup() {
        let c = MachineConfig::new(MachineKind::Virt);
        match c.firmware_path() {
            Ok(Some(p)) => assert!(p.is_file()),
            Ok(None) => panic!("Bios::Default on virt must name a file or fail"),
            Err(e) => {
                assert!(e.to_string().contains("fw_dynamic.bin"));
                eprintln!("NOTE: no OpenSBI installed here; checked the error instead");
            }
        }
    }
}
