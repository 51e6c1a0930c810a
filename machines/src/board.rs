//! An assembled board, and the initial state it hands its harts.

use crate::boot::layout::Span;
use crate::config::MachineKind;
use crate::isa::IsaConfig;
use rivet_devices::aclint::Aclint;
use rivet_devices::aplic::Aplic;
use rivet_devices::bus::Bus;
use rivet_devices::clock::Clock;
use rivet_devices::htif::Htif;
use rivet_devices::imsic::Imsic;
use rivet_devices::irq::HartSignals;
use rivet_devices::plic::Plic;
use rivet_devices::power::PowerControl;
use rivet_devices::ram::GuestRam;
use rivet_devices::uart16550::Uart16550;
use std::ops::Range;
use std::sync::Arc;

/// A machine ready to run: memory, devices, and where each hart starts.
pub struct Board {
    pub kind: MachineKind,
    pub ram: Arc<GuestRam>,
    /// Every device window. An address is either RAM or on the bus, except the ranges
    /// in [`Board::mmio_in_ram`].
    pub bus: Bus,
    /// Per hart (index = hart id): the `mip` bits devices drive, `mtimecmp`, wake-ups.
    pub harts: Vec<Arc<HartSignals>>,
    pub power: Arc<PowerControl>,
    pub clock: Clock,
    /// The CLINT. The `time` CSR reads [`Aclint::mtime`] (the guest may move `mtime`).
    pub aclint: Arc<Aclint>,
    pub plic: Option<Arc<Plic>>,
    /// The APLIC (virt with `aia=aplic` or `aia=aplic-imsic`).
    pub aplic: Option<Arc<Aplic>>,
    /// Every hart's IMSIC interrupt files (virt with `aia=aplic-imsic`).
    pub imsic: Option<Arc<Imsic>>,
    /// The console UART (virt), for host input and flushing output.
    pub uart: Option<Arc<Uart16550>>,
    /// The HTIF mailbox (spike).
    pub htif: Option<Arc<Htif>>,
    /// The device tree as handed to the guest.
    pub fdt: Vec<u8>,
    pub boot: BootState,
    /// The extensions the harts must implement: exactly what the device tree says.
    pub isa: IsaConfig,
    /// Ranges inside RAM that belong to a device on the bus (spike's HTIF words). A hart
    /// must send accesses there to the bus, and must not map their pages for direct
    /// host access.
    pub mmio_in_ram: Vec<Range<u64>>,
    /// `[begin_signature, end_signature)` of a riscv-arch-test program (spike).
    pub signature: Option<Range<u64>>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("kind", &self.kind)
            .field(
                "ram",
                &format_args!("{:#x}+{:#x}", self.ram.base(), self.ram.size()),
            )
            .field(
                "bus",
                &self
                    .bus
                    .regions()
                    .iter()
                    .map(|r| (r.name, r.base, r.size))
                    .collect::<Vec<_>>(),
            )
            .field("harts", &self.harts.len())
            .field("boot", &self.boot)
            .field("isa", &self.isa.isa_string())
            .field("mmio_in_ram", &self.mmio_in_ram)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

impl Board {
    /// Whether an access to `addr` goes to the bus rather than to RAM.
    pub fn is_mmio(&self, addr: u64) -> bool {
        !self.ram.contains(addr, 1) || self.mmio_in_ram.iter().any(|r| r.contains(&addr))
    }

    /// Writes out buffered console output (call before the process exits).
    pub fn flush_console(&self) {
        if let Some(u) = &self.uart {
            u.flush();
        }
        if let Some(h) = &self.htif {
            h.flush();
        }
    }
}

/// Registers of one hart at reset. Every hart starts in M-mode with all other
/// registers zero (Priv spec 3.4: reset puts the hart in M-mode, `mstatus.MIE = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HartBoot {
    pub pc: u64,
    /// Hart id.
    pub a0: u64,
    /// Device tree address.
    pub a1: u64,
    /// `fw_dynamic_info` address (virt), else 0.
    pub a2: u64,
}

/// Where everything went in memory, for logs and for tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootLayout {
    pub firmware: Option<Span>,
    pub kernel: Option<Span>,
    pub initrd: Option<Span>,
    pub fdt: Option<Span>,
    /// Where the firmware hands over to (`fw_dynamic_info.next_addr`).
    pub next_addr: u64,
    /// `fw_dynamic_info` in the boot ROM.
    pub fw_dynamic_info: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    /// Per hart, indexed by hart id. All harts start at the same place (the firmware,
    /// or the kernel without firmware), as on QEMU; the firmware picks a boot hart.
    pub harts: Vec<HartBoot>,
    /// The boot ROM's reset program. Starting a hart here with zeroed registers reaches
    /// the same state as `harts[i]`.
    pub reset_vector: u64,
    pub layout: BootLayout,
}

impl BootState {
    /// Per-hart start state, in hart-id order.
    pub fn iter(&self) -> std::slice::Iter<'_, HartBoot> {
        self.harts.iter()
    }
}

impl<'a> IntoIterator for &'a BootState {
    type Item = &'a HartBoot;
    type IntoIter = std::slice::Iter<'a, HartBoot>;

    fn into_iter(self) -> Self::IntoIter {
        self.harts.iter()
    }
}
