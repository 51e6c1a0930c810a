//! The `spike` board, for bare-metal test programs (riscv-tests, riscv-arch-test): RAM,
//! a CLINT, a boot ROM holding the device tree, and the HTIF mailbox at the program's
//! `tohost`/`fromhost` symbols (Spike's `riscv/platform.h` memory map).
//!
//! The HTIF words lie inside RAM; the board lists them in [`crate::Board::mmio_in_ram`]
//! so the hart sends accesses there to the bus, as Spike does.

use crate::board::{BootLayout, BootState, HartBoot};
use crate::boot::fw_dynamic;
use crate::boot::layout::{self, RamRange, Span};
use crate::boot::{detect, read_file, BootError, FileKind};
use crate::config::MachineConfig;
use crate::dtb::DtbError;
use crate::fdt::{self, FdtParams};
use crate::virt::place_elf;
use crate::Error;
use rivet_devices::ram::GuestRam;

pub mod map {
    pub use crate::virt::map::Window;

    pub const ROM: Window = Window {
        base: 0x1000,
        size: 0xf000,
    };
    pub const CLINT: Window = Window {
        base: 0x200_0000,
        size: 0xc_0000,
    };
    pub const DRAM_BASE: u64 = 0x8000_0000;
}

/// The symbols of the HTIF mailbox (riscv-tests `env/p/riscv_test.h`), and those that
/// bound an riscv-arch-test result signature.
pub const SYMBOLS: [&str; 4] = ["tohost", "fromhost", "begin_signature", "end_signature"];

#[derive(Debug)]
pub struct Loaded {
    pub boot: BootState,
    pub fdt: Vec<u8>,
    pub rom: Vec<u8>,
    pub tohost: u64,
    pub fromhost: Option<u64>,
    /// Where riscv-arch-test programs leave their signature.
    pub signature: Option<(u64, u64)>,
}

/// Loads the one ELF program named by `cfg` and builds the boot ROM.
pub fn load(cfg: &MachineConfig, ram: &GuestRam) -> Result<Loaded, Error> {
    let r = RamRange {
        base: ram.base(),
        size: ram.size(),
    };
    let path = match (&cfg.kernel, cfg.firmware_path()?) {
        (Some(k), _) => k.clone(),
        (None, Some(f)) => f,
        (None, None) => return Err(crate::config::ConfigError::NothingToBoot.into()),
    };
    let data = read_file(&path)?;
    if detect(&path, &data)? != FileKind::Elf {
        return Err(BootError::BadElf {
            path,
            reason: "the spike board runs ELF programs only".into(),
        }
        .into());
    }
    let (elf, span) = place_elf(&path, &data, r, r.base, "program", &SYMBOLS)?;
    let Some(&tohost) = elf.symbols.get("tohost") else {
        return Err(Error::NoTohost { path });
    };
    let fromhost = elf.symbols.get("fromhost").copied();
    for (name, addr) in [("tohost", Some(tohost)), ("fromhost", fromhost)] {
        if let Some(a) = addr.filter(|a| a % 8 != 0 || !ram.contains(*a, 8)) {
            return Err(BootError::BadElf {
                path,
                reason: format!("`{name}` at {a:#x} is not an aligned doubleword in RAM"),
            }
            .into());
        }
    }
    let signature = elf
        .symbols
        .get("begin_signature")
        .zip(elf.symbols.get("end_signature"))
        .map(|(&b, &e)| (b, e))
        .filter(|(b, e)| b <= e);

    let fdt_blob =
        match (&cfg.dtb, cfg.dtb.as_deref().map(read_file).transpose()?) {
            (Some(p), Some(blob)) => fdt::patch_chosen(&blob, cfg.append.as_deref(), None)
                .map_err(|source: DtbError| Error::Dtb {
                    path: p.clone(),
                    source,
                })?,
            _ => fdt::spike(&FdtParams {
                harts: cfg.smp,
                ram_base: r.base,
                ram_size: r.size,
                isa: cfg.isa.clone(),
                bootargs: cfg.append.as_deref(),
                initrd: None,
                rng_seed: None,
            })
            .map_err(Error::Fdt)?,
        };

    // As on Spike, the tree follows the reset program in the ROM; a tree too large
    // for the ROM (hundreds of harts) goes to the top of RAM instead.
    let mut rom = fw_dynamic::spike_reset_vector(elf.entry).to_vec();
    let in_rom = rom.len() + fdt_blob.len() <= map::ROM.size as usize;
    let (fdt_addr, fdt_span) = if in_rom {
        let a = map::ROM.base + rom.len() as u64;
        rom.extend_from_slice(&fdt_blob);
        (a, None)
    } else {
        let a = layout::fdt_addr(r, fdt_blob.len() as u64)?;
        let s = r.check("device tree", a, fdt_blob.len() as u64)?;
        layout::check_disjoint(&[span, s])?;
        (a, Some(s))
    };

    elf.load(&path, ram)?;
    if let Some(s) = fdt_span {
        ram.write_bytes(s.start, &fdt_blob)
            .ok_or(BootError::NoRoom {
                what: "device tree",
                size: s.len(),
                ram_mib: r.size >> 20,
            })?;
    }

    let harts = (0..cfg.smp as u64)
        .map(|id| HartBoot {
            pc: elf.entry,
            a0: id,
            a1: fdt_addr,
            a2: 0,
        })
        .collect();
    Ok(Loaded {
        boot: BootState {
            harts,
            reset_vector: map::ROM.base,
            layout: BootLayout {
                firmware: None,
                kernel: Some(span),
                initrd: None,
                fdt: fdt_span.or(Some(Span {
                    what: "device tree",
                    start: fdt_addr,
                    end: fdt_addr + fdt_blob.len() as u64,
                })),
                next_addr: elf.entry,
                fw_dynamic_info: None,
            },
        },
        fdt: fdt_blob,
        rom,
        tohost,
        fromhost,
        signature,
    })
}
