//! The `virt` board: QEMU virt's memory map (hw/riscv/virt.c, `virt_memmap`), so that
//! unmodified OpenSBI and Linux run on it as they do on QEMU.
//!
//! ```text
//! 0x0000_1000  mask ROM: reset program + fw_dynamic_info
//! 0x0010_0000  SiFive test / syscon (poweroff 0x5555, reboot 0x7777)
//! 0x0010_1000  goldfish RTC, IRQ 11
//! 0x0200_0000  CLINT (ACLINT MSWI + MTIMER)
//! 0x0c00_0000  PLIC, 95 sources, contexts: M and S per hart       (aia=none)
//! 0x0c00_0000  APLIC machine-level (root) domain, 96 sources       (aia=aplic*)
//! 0x0d00_0000  APLIC supervisor-level domain                       (aia=aplic*)
//! 0x1000_0000  16550A UART, IRQ 10
//! 0x1000_1000  8 virtio-mmio slots of 0x1000, IRQ 1..8
//! 0x2400_0000  IMSIC machine-level files, a page per hart          (aia=aplic-imsic)
//! 0x2800_0000  IMSIC supervisor-level and guest files per hart     (aia=aplic-imsic)
//! 0x8000_0000  RAM
//! ```
//!
//! With `aia=aplic` the APLIC signals harts directly; with `aia=aplic-imsic` it
//! forwards interrupts as MSIs to the IMSICs. Either way devices' lines go into the
//! root domain, which firmware delegates to the supervisor-level one.

use crate::board::{Board, BootLayout, BootState, HartBoot};
use crate::boot::elf::{self, ElfFile};
use crate::boot::fw_dynamic::{self, FwDynamicInfo};
use crate::boot::layout::{self, RamRange, Span};
use crate::boot::{detect, image, read_file, BootError, FileKind};
use crate::config::{Aia, MachineConfig};
use crate::fdt::{self, FdtParams};
use crate::isa::IsaConfig;
use crate::rom::Rom;
use crate::Error;
use rivet_devices::aclint::Aclint;
use rivet_devices::aplic::{Aplic, AplicConfig, Delivery, Domain};
use rivet_devices::bus::{Bus, MmioDevice};
use rivet_devices::clock::Clock;
use rivet_devices::goldfish_rtc::GoldfishRtc;
use rivet_devices::imsic::Imsic;
use rivet_devices::irq::{HartSignals, IrqLine, MsiSink, NoMsi};
use rivet_devices::plic::Plic;
use rivet_devices::power::PowerControl;
use rivet_devices::ram::GuestRam;
use rivet_devices::syscon::SifiveTest;
use rivet_devices::uart16550::Uart16550;
use std::path::Path;
use std::sync::Arc;

pub mod map {
    use rivet_devices::{aplic, imsic};

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
    /// The APLIC domains, each sized as QEMU does for the most harts a board has.
    pub const APLIC_M: Window = Window {
        base: aplic::VIRT_M_BASE,
        size: aplic::VIRT_WINDOW_SIZE,
    };
    pub const APLIC_S: Window = Window {
        base: aplic::VIRT_S_BASE,
        size: aplic::VIRT_WINDOW_SIZE,
    };
    /// APLIC sources 1 to 96 (`riscv,num-sources`).
    pub const AIA_SOURCES: u32 = aplic::VIRT_NUM_SOURCES;
    pub const IMSIC_M_BASE: u64 = imsic::VIRT_M_BASE;
    pub const IMSIC_S_BASE: u64 = imsic::VIRT_S_BASE;
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
    let no_room = |size: usize| BootError::NoRoom {
        what: "kernel",
        size: size as u64,
        ram_mib: r.size >> 20,
    };
    if let (Some(path), Some(data)) = (cfg.kernel.as_deref(), k_data.as_deref()) {
        let (next, entry, span) = match detect(path, data)? {
            FileKind::Elf => {
                let base = layout::kernel_start(r, fw_end, 0).ok_or(no_room(data.len()))?;
                let (elf, span) = place_elf(path, data, r, base, "kernel", &[])?;
                let entry = elf.entry;
                pending.push(Pending::Elf(path, elf));
                (span.start, entry, span)
            }
            FileKind::Image => {
                let hdr = image::parse(path, data)?;
                let start = layout::kernel_start(r, fw_end, hdr.text_offset)
                    .ok_or(no_room(hdr.image_size as usize))?;
                let span = r.check("kernel", start, hdr.image_size)?;
                pending.push(Pending::Bytes(start, data));
                (start, start, span)
            }
            FileKind::Raw => {
                let start = layout::kernel_start(r, fw_end, 0).ok_or(no_room(data.len()))?;
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
                aia: cfg.aia,
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

/// Assembles a virt board.
pub fn build(mut cfg: MachineConfig) -> Result<Board, Error> {
    cfg.validate()?;
    // The harts' AIA CSRs come with the IMSIC, as on QEMU (whose `aia=aplic` harts do
    // not advertise Smaia/Ssaia).
    if let Aia::AplicImsic { .. } = cfg.aia {
        for ext in IsaConfig::BOARD_EXTENSIONS {
            cfg.isa.enable(ext);
        }
    }
    let ram = Arc::new(GuestRam::new(map::DRAM_BASE, cfg.memory)?);
    let loaded = load(&cfg, &ram)?;

    let harts: Vec<Arc<HartSignals>> = (0..cfg.smp).map(|_| Arc::new(HartSignals::new())).collect();
    let power = Arc::new(PowerControl::new());
    let clock = Clock::new();
    let aclint = Aclint::new(harts.clone(), clock.clone())?;

    let mut bus = Bus::new();
    let (mut plic, mut aplic, mut imsic) = (None, None, None);
    let chip = match cfg.aia {
        Aia::None => {
            let p = Plic::new(map::PLIC_SOURCES, harts.clone())?;
            bus.map(map::PLIC.base, map::PLIC.size, "plic", p.clone());
            plic = Some(p.clone());
            IrqChip::Plic(p)
        }
        Aia::Aplic | Aia::AplicImsic { .. } => {
            let (delivery, msi): (_, Arc<dyn MsiSink>) = match cfg.aia {
                Aia::AplicImsic { guests } => {
                    let files = Imsic::new(&harts, guests);
                    let (m, s) = (files.m_window_size(), files.s_window_size());
                    bus.map(map::IMSIC_M_BASE, m, "imsic-m", files.m_window());
                    bus.map(map::IMSIC_S_BASE, s, "imsic-s", files.s_window());
                    imsic = Some(files.clone());
                    (Delivery::Msi, files)
                }
                _ => (Delivery::Direct, Arc::new(NoMsi)),
            };
            let a = Aplic::new(AplicConfig::virt(delivery), harts.clone(), msi)?;
            for (w, domain, name) in [
                (map::APLIC_M, Domain::Machine, "aplic-m"),
                (map::APLIC_S, Domain::Supervisor, "aplic-s"),
            ] {
                bus.map(w.base, w.size, name, a.window(domain));
            }
            aplic = Some(a.clone());
            IrqChip::Aplic(a)
        }
    };
    let console = std::mem::replace(&mut cfg.console, Box::new(std::io::sink()));
    let uart = Uart16550::new(chip.line(map::UART0_IRQ)?, console);

    bus.map(
        map::MROM.base,
        map::MROM.size,
        "mrom",
        Arc::new(Rom::new(loaded.rom)),
    );
    bus.map(
        map::TEST.base,
        map::TEST.size,
        "sifive-test",
        SifiveTest::new(power.clone()),
    );
    bus.map(
        map::RTC.base,
        map::RTC.size,
        "goldfish-rtc",
        GoldfishRtc::new(chip.line(map::RTC_IRQ)?),
    );
    bus.map(map::CLINT.base, map::CLINT.size, "clint", aclint.clone());
    bus.map(map::UART0.base, map::UART0.size, "uart0", uart.clone());
    let mut virtio = std::mem::take(&mut cfg.virtio).into_iter();
    for slot in 0..map::VIRTIO_COUNT {
        let dev: Arc<dyn MmioDevice> = match virtio.next() {
            Some(make) => make(chip.line(map::virtio_irq(slot))?, ram.clone()),
            None => Arc::new(EmptyVirtioSlot),
        };
        bus.map(map::virtio_base(slot), map::VIRTIO_SIZE, "virtio-mmio", dev);
    }

    Ok(Board {
        kind: cfg.kind,
        ram,
        bus,
        harts,
        power,
        clock,
        aclint,
        plic,
        aplic,
        imsic,
        uart: Some(uart),
        htif: None,
        fdt: loaded.fdt,
        boot: loaded.boot,
        isa: cfg.isa,
        mmio_in_ram: Vec::new(),
        signature: None,
    })
}

/// The controller whose inputs the board's devices drive.
enum IrqChip {
    Plic(Arc<Plic>),
    Aplic(Arc<Aplic>),
}

impl IrqChip {
    fn line(&self, id: u32) -> Result<Arc<dyn IrqLine>, Error> {
        Ok(match self {
            IrqChip::Plic(p) => p.line(id)?,
            IrqChip::Aplic(a) => a.line(id)?,
        })
    }
}

/// A virtio-mmio slot with no device behind it: the magic value, version 2 and device
/// ID 0, which drivers take as "nothing here" (virtio 1.2, 4.2.2: "A device ID of 0x0
/// indicates a placeholder device"; 4.2.3.1.1: the driver must ignore it). Other
/// registers read 0 and writes are ignored.
pub struct EmptyVirtioSlot;

impl MmioDevice for EmptyVirtioSlot {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        match (offset, size) {
            (0x000, 4) => 0x7472_6976, // "virt"
            (0x004, 4) => 2,
            _ => 0,
        }
    }

    fn write(&self, _hart: usize, _offset: u64, _size: u8, _value: u64) {}
}

fn write(ram: &GuestRam, addr: u64, data: &[u8]) -> Result<(), BootError> {
    // The layout was checked against RAM; this only guards against a logic error.
    ram.write_bytes(addr, data).ok_or(BootError::NoRoom {
        what: "boot data",
        size: data.len() as u64,
        ram_mib: ram.size() >> 20,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::boot::elf::tests::tiny_elf;
    use crate::config::{Bios, MachineKind};
    use crate::dtb::Dtb;
    use goblin::elf::header::ET_EXEC;
    use std::path::PathBuf;

    /// A scratch directory removed on drop.
    pub(crate) struct Scratch(pub PathBuf);
    impl Scratch {
        pub(crate) fn new(name: &str) -> Self {
            let d = std::env::temp_dir().join(format!("rivet-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
        pub(crate) fn file(&self, name: &str, data: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, data).unwrap();
            p
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[0..2].copy_from_slice(b"MZ");
        d[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        d[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        d[0x30..0x38].copy_from_slice(b"RISCV\0\0\0");
        d[0x38..0x3c].copy_from_slice(b"RSC\x05");
        d[len - 1] = 0xaa;
        d
    }

    fn config(memory: u64) -> MachineConfig {
        let mut c = MachineConfig::new(MachineKind::Virt);
        c.memory = memory;
        c.rng_seed = None;
        c
    }

    fn ram(c: &MachineConfig) -> GuestRam {
        GuestRam::new(map::DRAM_BASE, c.memory).unwrap()
    }

    #[test]
    fn firmware_image_initrd_land_where_qemu_puts_them() {
        let s = Scratch::new("virt-qemu-layout");
        let mut c = config(256 << 20);
        c.smp = 2;
        c.bios = Bios::File(s.file("fw.bin", &[0x6f; 100_000]));
        c.kernel = Some(s.file("Image", &image(0x20_0000, 0x10_0000, 5000)));
        let initrd: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        c.initrd = Some(s.file("initrd", &initrd));
        c.append = Some("console=ttyS0".into());
        let ram = ram(&c);
        let l = load(&c, &ram).unwrap();
        let lay = &l.boot.layout;
        // The addresses QEMU 10 picks for the same files (its monitor and dumpdtb).
        assert_eq!(lay.kernel.unwrap().start, 0x8020_0000);
        assert_eq!(lay.kernel.unwrap().len(), 0x10_0000);
        assert_eq!(lay.initrd.unwrap().start, 0x8820_0000);
        assert_eq!(lay.initrd.unwrap().end, 0x8820_0000 + 3_000_000);
        assert_eq!(lay.fdt.unwrap().start, 0x8fe0_0000);
        assert_eq!(lay.next_addr, 0x8020_0000);
        assert_eq!(lay.fw_dynamic_info, Some(0x1028));
        assert_eq!(
            l.boot.harts,
            vec![
                HartBoot {
                    pc: 0x8000_0000,
                    a0: 0,
                    a1: 0x8fe0_0000,
                    a2: 0x1028
                },
                HartBoot {
                    pc: 0x8000_0000,
                    a0: 1,
                    a1: 0x8fe0_0000,
                    a2: 0x1028
                }
            ]
        );
        // Contents.
        assert_eq!(ram.read(0x8000_0000, 1), Some(0x6f));
        assert_eq!(
            ram.read(0x8020_0000, 2),
            Some(u64::from(u16::from_le_bytes(*b"MZ")))
        );
        assert_eq!(ram.read(0x8020_0000 + 4999, 1), Some(0xaa));
        assert_eq!(
            ram.read(0x8820_0000 + 2_999_999, 1),
            Some(u64::from(2_999_999u32 as u8))
        );
        let mut fdt = vec![0u8; l.fdt.len()];
        ram.read_bytes(0x8fe0_0000, &mut fdt).unwrap();
        assert_eq!(fdt, l.fdt);
        let t = Dtb::parse(&fdt).unwrap();
        let chosen = t.node("/chosen").unwrap();
        assert_eq!(
            chosen.prop("linux,initrd-start"),
            Some(&0x8820_0000u64.to_be_bytes()[..])
        );
        assert_eq!(
            chosen.prop_str("bootargs").as_deref(),
            Some("console=ttyS0")
        );
        assert!(t.node("/cpus/cpu@1").is_some());
        // The ROM: reset program then fw_dynamic_info (QEMU's mask ROM words).
        let w = |i: usize| u64::from_le_bytes(l.rom[i..i + 8].try_into().unwrap());
        assert_eq!(w(24), 0x8000_0000);
        assert_eq!(w(32), 0x8fe0_0000);
        assert_eq!(
            [w(40), w(48), w(56), w(64)],
            [0x4942_534f, 2, 0x8020_0000, 1]
        );
    }

    #[test]
    fn placement_agrees_with_qemu() {
        let s = Scratch::new("virt-vs-qemu");
        let fw = s.file("fw.bin", &[0x6f; 300_000]);
        let k = s.file("kern.bin", &[0x13; 5000]);
        let i = s.file("initrd", &[1; 1_234_567]);
        for mib in [256u64, 2048] {
            let dump = s.0.join(format!("q{mib}.dtb"));
            let out = std::process::Command::new("qemu-system-riscv64")
                .arg("-machine")
                .arg(format!("virt,dumpdtb={}", dump.display()))
                .args([
                    "-m",
                    &format!("{mib}M"),
                    "-display",
                    "none",
                    "-serial",
                    "none",
                ])
                .arg("-bios")
                .arg(&fw)
                .arg("-kernel")
                .arg(&k)
                .arg("-initrd")
                .arg(&i)
                .output();
            if !out.is_ok_and(|o| o.status.success()) {
                eprintln!("SKIPPED: qemu-system-riscv64 not runnable; cannot compare placement");
                return;
            }
            let q = Dtb::parse(&std::fs::read(&dump).unwrap()).unwrap();
            let qc = q.node("/chosen").unwrap();
            let mut c = config(mib << 20);
            c.bios = Bios::File(fw.clone());
            c.kernel = Some(k.clone());
            c.initrd = Some(i.clone());
            let ram = ram(&c);
            let l = load(&c, &ram).unwrap();
            let ours = Dtb::parse(&l.fdt).unwrap();
            let oc = ours.node("/chosen").unwrap();
            for p in ["linux,initrd-start", "linux,initrd-end"] {
                assert_eq!(oc.prop(p), qc.prop(p), "{p} with {mib} MiB");
            }
            assert_eq!(
                ours.node("/memory@80000000").unwrap().prop("reg"),
                q.node("/memory@80000000").unwrap().prop("reg")
            );
        }
    }

    #[test]
    fn opensbi_elf_and_bin_load() {
        let dir = Path::new("/usr/lib/riscv64-linux-gnu/opensbi/generic");
        let (elf, bin) = (dir.join("fw_dynamic.elf"), dir.join("fw_dynamic.bin"));
        if !elf.is_file() || !bin.is_file() {
            eprintln!("SKIPPED: Debian's opensbi package is not installed");
            return;
        }
        let s = Scratch::new("virt-opensbi");
        let k = s.file("Image", &image(0x20_0000, 0x40_0000, 4096));
        let mut images = Vec::new();
        for fw in [elf, bin] {
            let mut c = config(128 << 20);
            c.bios = Bios::File(fw);
            c.kernel = Some(k.clone());
            let ram = ram(&c);
            let l = load(&c, &ram).unwrap();
            assert_eq!(l.boot.harts[0].pc, 0x8000_0000);
            assert_eq!(l.boot.layout.kernel.unwrap().start, 0x8020_0000);
            let mut text = vec![0u8; 0x1000];
            ram.read_bytes(0x8000_0000, &mut text).unwrap();
            images.push(text);
        }
        // The PIE ELF, moved to the start of RAM, holds the same code as the .bin.
        assert_eq!(images[0], images[1]);
    }

    #[test]
    fn kernel_without_firmware_starts_at_its_entry() {
        let s = Scratch::new("virt-bios-none");
        let mut c = config(64 << 20);
        c.bios = Bios::None;
        c.kernel = Some(s.file(
            "k.elf",
            &tiny_elf(0x8000_1000, &[0x13, 0, 0, 0], 0, ET_EXEC),
        ));
        let ram = ram(&c);
        let l = load(&c, &ram).unwrap();
        assert_eq!(l.boot.harts[0].pc, 0x8000_1000);
        assert_eq!(l.boot.layout.firmware, None);
        assert_eq!(ram.read(0x8000_1000, 4), Some(0x13));
        // M-mode Image (text_offset 0): from the start of RAM.
        c.kernel = Some(s.file("Image", &image(0, 0, 4096)));
        let l = load(&c, &ram).unwrap();
        assert_eq!(l.boot.harts[0].pc, 0x8000_0000);
        // Raw binary: from the start of RAM.
        c.kernel = Some(s.file("raw", &[0x13; 64]));
        assert_eq!(load(&c, &ram).unwrap().boot.harts[0].pc, 0x8000_0000);
    }

    #[test]
    fn errors_name_the_problem() {
        let s = Scratch::new("virt-errors");
        let fw = s.file("fw.bin", &[0x6f; 1000]);
        let msg = |c: &MachineConfig| {
            let ram = ram(c);
            load(c, &ram).unwrap_err().to_string()
        };
        // A kernel ELF linked over the firmware.
        let mut c = config(64 << 20);
        c.bios = Bios::File(fw.clone());
        c.kernel = Some(s.file("k.elf", &tiny_elf(0x8000_0000, &[0; 16], 0, ET_EXEC)));
        let e = msg(&c);
        assert!(
            e.contains("firmware") && e.contains("overlaps the kernel"),
            "{e}"
        );
        // A kernel ELF outside RAM.
        c.kernel = Some(s.file("low.elf", &tiny_elf(0x1000, &[0; 16], 0, ET_EXEC)));
        let e = msg(&c);
        assert!(
            e.contains("low.elf") && e.contains("outside guest RAM"),
            "{e}"
        );
        // A corrupt ELF.
        let mut bad = tiny_elf(0x8020_0000, &[0; 16], 0, ET_EXEC);
        bad[18] = 0x3e;
        c.kernel = Some(s.file("x86.elf", &bad));
        let e = msg(&c);
        assert!(e.contains("x86.elf") && e.contains("not RISC-V"), "{e}");
        // Missing file.
        c.kernel = Some(s.0.join("missing"));
        assert!(msg(&c).contains("missing"));
        // An Image too big for RAM.
        c.kernel = Some(s.file("big", &image(0x20_0000, 63 << 20, 4096)));
        let e = msg(&c);
        assert!(e.contains("No room for the kernel"), "{e}");
        // An initrd too big for what is left.
        c.kernel = Some(s.file("Image", &image(0x20_0000, 0, 4096)));
        c.initrd = Some(s.file("initrd", &vec![0; 62 << 20]));
        let e = msg(&c);
        assert!(e.contains("No room for the initrd"), "{e}");
        // A firmware that leaves no 2 MiB boundary for the kernel.
        let mut small = config(4 << 20);
        small.bios = Bios::File(s.file("big-fw.bin", &vec![0; 3 << 20]));
        small.kernel = Some(s.file("k.bin", &[0x13; 5000]));
        let e = msg(&small);
        assert!(
            e.contains("No room for the kernel (5000 bytes) in 4 MiB"),
            "{e}"
        );
        // A corrupt user device tree.
        c.initrd = None;
        c.dtb = Some(s.file("bad.dtb", b"\xd0\x0d\xfe\xed\0\0\0\x10"));
        let e = msg(&c);
        assert!(e.contains("bad.dtb") && e.contains("device tree"), "{e}");
    }

    #[test]
    fn user_device_tree_is_patched_like_qemu() {
        let s = Scratch::new("virt-user-dtb");
        let mut c = config(128 << 20);
        let p = crate::fdt::FdtParams {
            harts: 1,
            ram_base: map::DRAM_BASE,
            ram_size: 128 << 20,
            ..Default::default()
        };
        let user = crate::fdt::virt(&p).unwrap();
        c.dtb = Some(s.file("user.dtb", &user));
        c.bios = Bios::File(s.file("fw.bin", &[1; 64]));
        c.kernel = Some(s.file("Image", &image(0x20_0000, 0, 4096)));
        c.initrd = Some(s.file("initrd", &[5; 4096]));
        c.append = Some("root=/dev/vda".into());
        let ram = ram(&c);
        let l = load(&c, &ram).unwrap();
        let t = Dtb::parse(&l.fdt).unwrap();
        let ch = t.node("/chosen").unwrap();
        assert_eq!(ch.prop_str("bootargs").as_deref(), Some("root=/dev/vda"));
        let start = l.boot.layout.initrd.unwrap().start;
        assert_eq!(
            ch.prop("linux,initrd-start"),
            Some(&start.to_be_bytes()[..])
        );
        assert_eq!(start, 0x8020_0000 + (64 << 20));
    }

    #[test]
    fn board_devices_answer_on_the_bus() {
        use rivet_devices::irq::{MEIP, MSIP, SEIP};
        use rivet_devices::output::SharedBuffer;
        use rivet_devices::power::PowerEvent;
        let s = Scratch::new("virt-board");
        let mut c = config(64 << 20);
        c.smp = 2;
        c.bios = Bios::File(s.file("fw.bin", &[0x6f; 256]));
        let out = SharedBuffer::new();
        c.console = Box::new(out.clone());
        let b = crate::build(c).unwrap();
        let rd = |a: u64, n: u8| b.bus.read(0, a, n).unwrap();
        let wr = |a: u64, n: u8, v: u64| b.bus.write(0, a, n, v).unwrap();

        // Boot ROM: reset program, then fw_dynamic_info.
        assert_eq!(rd(0x1000, 4), 0x0000_0297);
        assert_eq!(rd(0x1028, 8), 0x4942_534f);
        assert_eq!(b.boot.harts[1].pc, 0x8000_0000);
        assert_eq!(b.ram.read(0x8000_0000, 1), Some(0x6f));

        // UART: LSR says the transmitter is empty; a THR write reaches the console.
        assert_eq!(rd(0x1000_0005, 1) & 0x60, 0x60);
        wr(0x1000_0000, 1, u64::from(b'R'));
        b.flush_console();
        assert_eq!(out.contents(), b"R");

        // UART -> PLIC source 10 -> hart 0 M-mode (context 0), hart 1 S-mode (context 3):
        // the contexts the device tree's interrupts-extended lists.
        wr(0x0c00_0000 + 4 * 10, 4, 1);
        wr(0x0c00_2000, 4, 1 << 10);
        wr(0x0c00_2000 + 3 * 0x80, 4, 1 << 10);
        assert_eq!(b.harts[0].pending() & MEIP, 0);
        wr(0x1000_0001, 1, 0x02); // IER.ETBEI: THR empty interrupt
        assert_ne!(b.harts[0].pending() & MEIP, 0);
        assert_ne!(b.harts[1].pending() & SEIP, 0);
        assert_eq!(b.harts[1].pending() & MEIP, 0);
        assert_eq!(rd(0x0c20_0004, 4), 10, "claim");

        // CLINT: msip of hart 1.
        wr(0x0200_0004, 4, 1);
        assert_ne!(b.harts[1].pending() & MSIP, 0);
        assert_eq!(b.harts[0].pending() & MSIP, 0);
        let t0 = rd(0x0200_bff8, 8);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(rd(0x0200_bff8, 8) > t0);

        // RTC: nanoseconds since the epoch, well past 2020.
        let lo = rd(0x10_1000, 4);
        let hi = rd(0x10_1004, 4);
        assert!((hi << 32 | lo) > 1_577_836_800_000_000_000);

        // Empty virtio slots: magic, version 2, device ID 0.
        for slot in 0..8 {
            let base = 0x1000_1000 + slot * 0x1000;
            assert_eq!(rd(base, 4), 0x7472_6976);
            assert_eq!(rd(base + 4, 4), 2);
            assert_eq!(rd(base + 8, 4), 0);
        }
        assert!(b.bus.read(0, 0x1000_9000, 4).is_err());
        assert!(b.bus.read(0, 0x3000_0000, 4).is_err());
        assert!(b.is_mmio(0x1000_0000) && !b.is_mmio(0x8000_0000));

        // SiFive test: poweroff.
        assert!(b.power.is_running());
        wr(0x10_0000, 4, 0x5555);
        assert_eq!(b.power.event(), Some(PowerEvent::PowerOff));
    }

    /// `aia=aplic-imsic`: the UART's line through the root domain, delegated to the
    /// supervisor domain, forwarded as an MSI to hart 1's S-level file; a store to a
    /// guest file's page raises that hart's `hgeip` bit.
    #[test]
    fn aplic_imsic_board_routes_msis() {
        use rivet_devices::aplic::{
            DOMAINCFG, MMSIADDRCFG, SETIENUM, SMSIADDRCFG, SOURCECFG_BASE, TARGET_BASE,
        };
        use rivet_devices::imsic::iselect::{EIDELIVERY, EIE0};
        use rivet_devices::irq::SEIP;
        let s = Scratch::new("virt-aia");
        let mut c = config(64 << 20);
        c.smp = 2;
        c.aia = Aia::AplicImsic { guests: 3 };
        c.bios = Bios::File(s.file("fw.bin", &[0x6f; 256]));
        let b = crate::build(c).unwrap();
        assert!(b.plic.is_none() && b.aplic.is_some());
        assert!(b.isa.has(crate::Ext::Smaia) && b.isa.has(crate::Ext::Ssaia));
        let rd = |a: u64| b.bus.read(0, a, 4).unwrap();
        let wr = |a: u64, v: u64| b.bus.write(0, a, 4, v).unwrap();
        let (m, sup) = (map::APLIC_M.base, map::APLIC_S.base);
        // What OpenSBI does from the tree: MSI addresses, every source delegated.
        wr(m + MMSIADDRCFG, map::IMSIC_M_BASE >> 12);
        wr(m + SMSIADDRCFG, map::IMSIC_S_BASE >> 12);
        wr(m + MMSIADDRCFG + 4, 1 << 12); // LHXW = 1 (two harts)
        wr(m + SMSIADDRCFG + 4, 2 << 20); // LHXS = 2 (S file + 3 guests -> 4 pages)
        wr(m + SOURCECFG_BASE + 4 * 9, 1 << 10);
        wr(m + DOMAINCFG, 1 << 8);
        // What Linux does: level-high source 10 to hart 1, identity 5.
        wr(sup + SOURCECFG_BASE + 4 * 9, 6);
        wr(sup + TARGET_BASE + 4 * 9, 1 << 18 | 5);
        wr(sup + SETIENUM, 10);
        wr(sup + DOMAINCFG, 1 << 8);
        assert_eq!(rd(sup + DOMAINCFG) & 0x104, 0x104, "IE set, DM reads MSI");
        let files = b.imsic.as_ref().unwrap().hart(1).unwrap();
        assert_eq!(files.geilen(), 3);
        files.s.modify(EIDELIVERY, |_| 1).unwrap();
        files.s.modify(EIE0, |_| 1 << 5).unwrap();
        assert_eq!(b.harts[1].pending() & SEIP, 0);
        b.bus.write(0, 0x1000_0001, 1, 0x02).unwrap(); // UART IER.ETBEI
        assert_ne!(b.harts[1].pending() & SEIP, 0);
        assert_eq!(b.harts[0].pending() & SEIP, 0);
        assert_eq!(files.s.claim() & 0x7ff, 5);

        // Guest file 2 of hart 1: page 1 * 4 + 2 of the supervisor window.
        let g2 = files.guest(2).unwrap();
        g2.modify(EIDELIVERY, |_| 1).unwrap();
        g2.modify(EIE0, |_| 1 << 9).unwrap();
        wr(map::IMSIC_S_BASE + (4 + 2) * 0x1000, 9);
        assert_eq!(b.harts[1].hgeip(), 1 << 2);
        assert_eq!(b.harts[0].hgeip(), 0);
    }

    #[test]
    fn virtio_factories_fill_slots_in_order() {
        use rivet_devices::irq::IrqLine;
        struct Dev(Arc<dyn IrqLine>, u32);
        impl MmioDevice for Dev {
            fn read(&self, _: usize, _: u64, _: u8) -> u64 {
                u64::from(self.1)
            }
            fn write(&self, _: usize, _: u64, _: u8, v: u64) {
                self.0.set_level(v != 0);
            }
        }
        let s = Scratch::new("virt-virtio");
        let mut c = config(64 << 20);
        c.bios = Bios::File(s.file("fw.bin", &[0; 16]));
        for id in [2u32, 4] {
            c.virtio.push(Box::new(move |irq, _ram| {
                Arc::new(Dev(irq, id)) as Arc<dyn MmioDevice>
            }));
        }
        let b = crate::build(c).unwrap();
        assert_eq!(b.bus.read(0, 0x1000_1000, 4), Ok(2));
        assert_eq!(b.bus.read(0, 0x1000_2000, 4), Ok(4));
        assert_eq!(b.bus.read(0, 0x1000_3000, 4), Ok(0x7472_6976));
        // The second device drives PLIC source 2.
        b.bus.write(0, 0x0c00_0000 + 8, 4, 1).unwrap();
        b.bus.write(0, 0x0c00_2000, 4, 1 << 2).unwrap();
        b.bus.write(0, 0x1000_2000, 4, 1).unwrap();
        assert_ne!(b.harts[0].pending() & rivet_devices::irq::MEIP, 0);
        assert_eq!(b.bus.read(0, 0x0c20_0004, 4), Ok(2));

        let mut c = config(64 << 20);
        c.bios = Bios::File(s.file("fw.bin", &[0; 16]));
        for _ in 0..9 {
            c.virtio.push(Box::new(|_, _| {
                Arc::new(EmptyVirtioSlot) as Arc<dyn MmioDevice>
            }));
        }
        assert!(crate::build(c).is_err());
    }
}
