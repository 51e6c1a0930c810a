//! The initial state a board hands its harts.

use crate::boot::layout::Span;

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
