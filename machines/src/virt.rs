//! The `virt` board: QEMU virt's memory map (hw/riscv/virt.c, `virt_memmap`), so that
//! unmodified OpenSBI and Linux run on it as they do on QEMU.
//!
//! ```text
//! 0x0000_1000  mask ROM: reset program + fw_dynamic_info
//! 0x0010_0000  SiFive test / syscon (poweroff 0x5555, reboot 0x7777)
//! 0x0010_1000  goldfish RTC, IRQ 11
//! 0x0200_0000  CLINT (ACLINT MSWI + MTIMER)
//! 0x0c00_0000  PLIC, 95 sources, contexts: M and S per hart
//! 0x1000_0000  16550A UART, IRQ 10
//! 0x1000_1000  8 virtio-mmio slots of 0x1000, IRQ 1..8
//! 0x8000_0000  RAM
//! ```

use crate::board::{BootLayout, BootState, HartBoot};
use crate::boot::elf::{self, ElfFile};
use crate::boot::fw_dynamic::{self, FwDynamicInfo};
use crate::boot::layout::{self, RamRange, Span};
use crate::boot::{detect, image, read_file, BootError, FileKind};
use crate::config::MachineConfig;
use crate::fdt::{self, FdtParams};
use crate::Error;
use rivet_devices::ram::GuestRam;
use std::path::Path;

pub mod map {
    /// A device window `[base, base + size)`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Window {
        pub base: u64,
        pub size: u64,
    }

    pub const MROM: Window = Window {
        base: 0x1000,
        size: 0xf000,
    };
    pub const TEST: Window = Window {
        base: 0x10_0000,
        size: 0x1000,
    };
    pub const RTC: Window = Window {
        base: 0x10_1000,
        size: 0x1000,
    };
    pub const CLINT: Window = Window {
        base: 0x200_0000,
        size: 0x1_0000,
    };
    /// Sized, as QEMU does, for two contexts of each of the most harts a board has:
    /// 0x20_0000 + 1024 * 0x1000 (PLIC spec, "Memory Map").
    pub const PLIC: Window = Window {
        base: 0xc00_0000,
        size: 0x60_0000,
    };
    pub const UART0: Window = Window {
        base: 0x1000_0000,
        size: 0x100,
    };
    pub const DRAM_BASE: u64 = 0x8000_0000;

    pub const VIRTIO_BASE: u64 = 0x1000_1000;
    pub const VIRTIO_SIZE: u64 = 0x1000;
    pub const VIRTIO_COUNT: usize = 8;

    pub const UART0_IRQ: u32 = 10;
    pub const RTC_IRQ: u32 = 11;
    /// PLIC interrupt sources including the reserved source 0 (`riscv,ndev` is one
    /// less).
    pub const PLIC_SOURCES: u32 = 96;
    /// The 16550's input clock as QEMU's tree states it (1.8432 MHz * 2).
    pub const UART_CLOCK_HZ: u32 = 3_686_400;
    /// Values the SiFive test device's syscon nodes write.
    pub const TEST_POWEROFF: u32 = 0x5555;
    pub const TEST_REBOOT: u32 = 0x7777;

    pub const fn virtio_base(slot: usize) -> u64 {
        VIRTIO_BASE + slot as u64 * VIRTIO_SIZE
    }

    pub const fn virtio_irq(slot: usize) -> u32 {
        1 + slot as u32
    }
}

/// Guest memory set up for boot: what goes in the ROM, the tree, the hart state.
#[derive(Debug)]
pub struct Loaded {
    pub boot: BootState,
    pub fdt: Vec<u8>,
    pub rom: Vec<u8>,
}

/// Something to copy into RAM once the whole layout is known to fit.
enum Pending<'a> {
    Elf(&'a Path, ElfFile<'a>),
    Bytes(u64, &'a [u8]),
}

/// An ELF's segments, checked to lie in RAM, and the span they cover.
pub(crate) fn place_elf<'a>(
    path: &Path,
    data: &'a [u8],
    ram: RamRange,
    pie_base: u64,
    what: &'static str,
    want: &[&str],
) -> Result<(ElfFile<'a>, Span), BootError> {
    let elf = elf::parse(path, data, pie_base, want)?;
    for s in &elf.segments {
        if ram.check(what, s.addr, s.mem_size).is_err() {
            return Err(BootError::OutsideRam {
                path: path.to_path_buf(),
                what: "segment",
                start: s.addr,
                end: s.addr.saturating_add(s.mem_size),
                ram_start: ram.base,
                ram_end: ram.end(),
            });
        }
    }
    let span = Span {
        what,
        start: elf.low(),
        end: elf.high(),
    };
    Ok((elf, span))
}

/// Reads the boot files named by `cfg`, places them in `ram` as QEMU's virt board does
/// and builds the device tree and the boot ROM.
pub fn load(cfg: &MachineConfig, ram: &GuestRam) -> Result<Loaded, Error> {
    let r = RamRange {
        base: ram.base(),
        size: ram.size(),
    };
    let fw_path = cfg.firmware_path()?;
    let fw_data = fw_path.as_deref().map(read_file).transpose()?;
    let k_data = cfg.kernel.as_deref().map(read_file).transpose()?;
    let i_data = cfg.initrd.as_deref().map(read_file).transpose()?;
    let dtb_data = cfg.dtb.as_deref().map(read_file).transpose()?;

    let mut spans = Vec::new();
    let mut pending = Vec::new();

    // Firmware at the start of RAM (ELFs where they are linked).
    let mut firmware = None;
    let mut fw_end = r.base;
    if let (Some(path), Some(data)) = (fw_path.as_deref(), fw_data.as_deref()) {
        let (entry, span) = if detect(path, data)? == FileKind::Elf {
            let (elf, span) = place_elf(path, data, r, r.base, "firmware", &[])?;
            let entry = elf.entry;
            pending.push(Pending::Elf(path, elf));
            (entry, span)
        } else {
            let span = r.check("firmware", r.base, data.len() as u64)?;
            pending.push(Pending::Bytes(r.base, data));
            (r.base, span)
        };
        fw_end = span.end;
        spans.push(span);
        firmware = Some((entry, span));
    }

    // The kernel: `next` is where the firmware hands over (QEMU passes an ELF's lowest
    // address, not its entry, so that fw_dynamic behaves as fw_jump does); `entry` is
    // where a hart starts when there is no firmware.
    let mut kernel = None;
    if let (Some(path), Some(data)) = (cfg.kernel.as_deref(), k_data.as_deref()) {
        let (next, entry, span) = match detect(path, data)? {
            FileKind::Elf => {
                let base = layout::kernel_start(r, fw_end, 0)?;
                let (elf, span) = place_elf(path, data, r, base, "kernel", &[])?;
                let entry = elf.entry;
                pending.push(Pending::Elf(path, elf));
                (span.start, entry, span)
            }
            FileKind::Image => {
                let hdr = image::parse(path, data)?;
                let start = layout::kernel_start(r, fw_end, hdr.text_offset)?;
                let span = r.check("kernel", start, hdr.image_size)?;
                pending.push(Pending::Bytes(start, data));
                (start, start, span)
            }
            FileKind::Raw => {
                let start = layout::kernel_start(r, fw_end, 0)?;
                let span = r.check("kernel", start, data.len() as u64)?;
                pending.push(Pending::Bytes(start, data));
                (start, start, span)
            }
        };
        spans.push(span);
        layout::check_disjoint(&spans)?;
        kernel = Some((next, entry, span));
    }

    // The device tree's size does not depend on the initrd address (fixed-size cells),
    // so a first build with a placeholder range tells where the tree goes; the initrd
    // then goes below it.
    let make_fdt = |initrd: Option<(u64, u64)>| -> Result<Vec<u8>, Error> {
        match (&dtb_data, &cfg.dtb) {
            (Some(blob), Some(path)) => fdt::patch_chosen(blob, cfg.append.as_deref(), initrd)
                .map_err(|source| Error::Dtb {
                    path: path.clone(),
                    source,
                }),
            _ => fdt::virt(&FdtParams {
                harts: cfg.smp,
                ram_base: r.base,
                ram_size: r.size,
                isa: cfg.isa.clone(),
                bootargs: cfg.append.as_deref(),
                initrd,
                rng_seed: cfg.rng_seed.as_deref(),
            })
            .map_err(Error::Fdt),
        }
    };
    let probe = make_fdt(i_data.as_ref().map(|_| (0, 0)))?;
    let fdt_addr = layout::fdt_addr(r, probe.len() as u64)?;

    let mut initrd = None;
    if let Some(data) = i_data.as_deref() {
        let kstart = kernel.map_or(r.base, |(next, _, _)| next);
        let start = layout::initrd_addr(r, kstart, data.len() as u64, fdt_addr, &spans)?;
        let span = r.check("initrd", start, data.len() as u64)?;
        pending.push(Pending::Bytes(start, data));
        spans.push(span);
        initrd = Some(span);
    }
    let fdt_blob = make_fdt(initrd.map(|s| (s.start, s.end)))?;
    let fdt_span = r.check("device tree", fdt_addr, fdt_blob.len() as u64)?;
    spans.push(fdt_span);
    layout::check_disjoint(&spans)?;

    for p in &pending {
        match p {
            Pending::Elf(path, elf) => elf.load(path, ram)?,
            Pending::Bytes(addr, data) => write(ram, *addr, data)?,
        }
    }
    write(ram, fdt_addr, &fdt_blob)?;

    let next_addr = kernel.map_or(0, |(next, _, _)| next);
    let start = match (firmware, kernel) {
        (Some((entry, _)), _) => entry,
        (None, Some((_, entry, _))) => entry,
        (None, None) => return Err(crate::config::ConfigError::NothingToBoot.into()),
    };
    let mut rom = fw_dynamic::reset_vector(start, fdt_addr).to_vec();
    let info_addr = map::MROM.base + rom.len() as u64;
    rom.extend_from_slice(&FwDynamicInfo::s_mode(next_addr).to_bytes());

    let harts = (0..cfg.smp as u64)
        .map(|id| HartBoot {
            pc: start,
            a0: id,
            a1: fdt_addr,
            a2: info_addr,
        })
        .collect();
    Ok(Loaded {
        boot: BootState {
            harts,
            reset_vector: map::MROM.base,
            layout: BootLayout {
                firmware: firmware.map(|(_, s)| s),
                kernel: kernel.map(|(_, _, s)| s),
                initrd,
                fdt: Some(fdt_span),
                next_addr,
                fw_dynamic_info: Some(info_addr),
            },
        },
        fdt: fdt_blob,
        rom,
    })
}

fn write(ram: &GuestRam, addr: u64, data: &[u8]) -> Result<(), BootError> {
    // The layout was checked against RAM; this only guards against a logic error.
    ram.write_bytes(addr, data).ok_or(BootError::NoRoom {
        what: "boot data",
        size: data.len() as u64,
        ram_mib: ram.size() >> 20,
    })
}
