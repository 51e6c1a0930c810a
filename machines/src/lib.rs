//! rivet-machines: boards (`virt`, `spike`), their memory maps and device trees, and the
//! boot protocols that place firmware, kernel, initrd and FDT in guest memory.

pub mod board;
pub mod boot;
pub mod config;
pub mod dtb;
pub mod fdt;
pub mod isa;
pub mod rom;
pub mod spike;
pub mod virt;

pub use board::{Board, BootLayout, BootState, HartBoot};
pub use config::{Aia, Bios, MachineConfig, MachineKind};
pub use isa::{Ext, IsaConfig, MmuType};

use std::path::PathBuf;

/// Why a board could not be built. Messages name the file or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    #[error("Cannot build the device tree")]
    Fdt(#[source] dtb::DtbError),
    #[error("{path} is not a usable device tree")]
    Dtb {
        path: PathBuf,
        #[source]
        source: dtb::DtbError,
    },
    #[error("{path} has no `tohost` symbol; the spike board talks to programs through HTIF")]
    NoTohost { path: PathBuf },
    #[error(transparent)]
    Ram(#[from] rivet_devices::ram::RamError),
    #[error(transparent)]
    Aclint(#[from] rivet_devices::aclint::AclintError),
    #[error(transparent)]
    Plic(#[from] rivet_devices::plic::PlicError),
    #[error(transparent)]
    Aplic(#[from] rivet_devices::aplic::AplicError),
    #[error(transparent)]
    Htif(#[from] rivet_devices::htif::HtifError),
}

/// Assembles the board `cfg` describes: RAM, devices, device tree, boot files.
pub fn build(cfg: MachineConfig) -> Result<Board, Error> {
    match cfg.kind {
        MachineKind::Virt => virt::build(cfg),
        MachineKind::Spike => spike::build(cfg),
    }
}
