//! The `spike` board, for bare-metal test programs (riscv-tests, riscv-arch-test): RAM,
//! a CLINT, a boot ROM holding the device tree, and the HTIF mailbox at the program's
//! `tohost`/`fromhost` symbols (Spike's `riscv/platform.h` memory map).
//!
//! The HTIF words lie inside RAM; the board lists them in [`crate::Board::mmio_in_ram`]
//! so the hart sends accesses there to the bus, as Spike does.

use crate::board::{Board, BootLayout, BootState, HartBoot};
use crate::boot::fw_dynamic;
use crate::boot::layout::{self, RamRange, Span};
use crate::boot::{detect, read_file, BootError, FileKind};
use crate::config::MachineConfig;
use crate::dtb::DtbError;
use crate::fdt::{self, FdtParams};
use crate::rom::Rom;
use crate::virt::place_elf;
use crate::Error;
use rivet_devices::aclint::{self, Aclint};
use rivet_devices::bus::Bus;
use rivet_devices::clock::Clock;
use rivet_devices::htif::Htif;
use rivet_devices::irq::HartSignals;
use rivet_devices::power::PowerControl;
use rivet_devices::ram::GuestRam;
use std::sync::Arc;

pub mod map {
    pub use crate::virt::map::Window;

    pub const ROM: Window = Window {
        base: 0x1000,
        size: 0xf000,
    };
    pub const CLINT: Window = Window {
        base: 0x200_0000,
        size: rivet_devices::aclint::SIZE,
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
                ..FdtParams::default()
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

/// Assembles a spike board around one ELF program.
pub fn build(mut cfg: MachineConfig) -> Result<Board, Error> {
    cfg.validate()?;
    let ram = Arc::new(GuestRam::new(map::DRAM_BASE, cfg.memory)?);
    let loaded = load(&cfg, &ram)?;

    let harts: Vec<Arc<HartSignals>> = (0..cfg.smp).map(|_| Arc::new(HartSignals::new())).collect();
    let power = Arc::new(PowerControl::new());
    let clock = Clock::new();
    let aclint = Aclint::new(harts.clone(), clock.clone())?;
    let console = std::mem::replace(&mut cfg.console, Box::new(std::io::sink()));
    let htif = Htif::new(
        power.clone(),
        console,
        Some(ram.clone()),
        loaded.tohost,
        loaded.fromhost,
    )?;

    let mut bus = Bus::new();
    bus.map(
        map::ROM.base,
        map::ROM.size,
        "bootrom",
        Arc::new(Rom::new(loaded.rom)),
    );
    bus.map(map::CLINT.base, aclint::SIZE, "clint", aclint.clone());
    bus.map(htif.base(), htif.size(), "htif", htif.clone());
    let htif_range = htif.base()..htif.base() + htif.size();

    Ok(Board {
        kind: cfg.kind,
        ram,
        bus,
        harts,
        power,
        clock,
        aclint,
        plic: None,
        aplic: None,
        imsic: None,
        uart: None,
        htif: Some(htif),
        fdt: loaded.fdt,
        boot: loaded.boot,
        isa: cfg.isa,
        mmio_in_ram: vec![htif_range],
        signature: loaded.signature.map(|(b, e)| b..e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::elf::tests::tiny_elf;
    use crate::config::{Bios, MachineKind};
    use crate::dtb::Dtb;
    use crate::virt::tests::Scratch;
    use goblin::elf::header::ET_EXEC;
    use rivet_devices::output::SharedBuffer;
    use rivet_devices::power::PowerEvent;
    use std::process::Command;

    fn config(kernel: std::path::PathBuf) -> MachineConfig {
        let mut c = MachineConfig::new(MachineKind::Spike);
        c.memory = 16 << 20;
        c.kernel = Some(kernel);
        c
    }

    #[test]
    fn htif_at_the_elf_symbols() {
        let s = Scratch::new("spike-htif");
        let elf = tiny_elf(0x8000_0000, &[0x13, 0, 0, 0], 0x1000, ET_EXEC);
        let mut c = config(s.file("t.elf", &elf));
        c.smp = 2;
        let out = SharedBuffer::new();
        c.console = Box::new(out.clone());
        let b = crate::build(c).unwrap();
        // tiny_elf puts tohost at +0x100 and fromhost at +0x140.
        assert_eq!(b.mmio_in_ram, vec![0x8000_0100..0x8000_0148]);
        assert!(b.is_mmio(0x8000_0100) && b.is_mmio(0x8000_0147));
        assert!(!b.is_mmio(0x8000_00ff) && !b.is_mmio(0x8000_0148));
        assert_eq!(
            b.boot.harts[1],
            HartBoot {
                pc: 0x8000_0000,
                a0: 1,
                a1: 0x1020,
                a2: 0
            }
        );
        // The device tree follows the reset program in the ROM.
        let mut rom_fdt = Vec::new();
        for a in (0..b.fdt.len() as u64).step_by(8) {
            rom_fdt.extend(b.bus.read(0, 0x1020 + a, 8).unwrap().to_le_bytes());
        }
        assert_eq!(&rom_fdt[..b.fdt.len()], &b.fdt[..]);
        let t = Dtb::parse(&b.fdt).unwrap();
        assert!(t.node("/cpus/cpu@1").is_some() && t.node("/htif").is_some());
        assert_eq!(b.bus.read(0, 0x1018, 8), Ok(0x8000_0000));

        // Console putchar, then exit with status 0.
        b.bus
            .write(0, 0x8000_0100, 8, 1 << 56 | 1 << 48 | u64::from(b'k'))
            .unwrap();
        assert_eq!(
            b.bus.read(0, 0x8000_0140, 8),
            Ok(1 << 56 | 1 << 48 | 0x100 | u64::from(b'k'))
        );
        b.flush_console();
        assert_eq!(out.contents(), b"k");
        b.bus.write(0, 0x8000_0100, 8, 1).unwrap();
        assert_eq!(b.power.event(), Some(PowerEvent::PowerOff));
        // CLINT.
        b.bus.write(0, 0x0200_0004, 4, 1).unwrap();
        assert_ne!(b.harts[1].pending() & rivet_devices::irq::MSIP, 0);
    }

    #[test]
    fn large_trees_go_to_ram() {
        let s = Scratch::new("spike-512");
        let mut c = config(s.file("t.elf", &tiny_elf(0x8000_0000, &[0; 4], 0, ET_EXEC)));
        c.smp = 512;
        let b = crate::build(c).unwrap();
        assert!(b.fdt.len() > map::ROM.size as usize);
        let fdt = b.boot.layout.fdt.unwrap();
        assert_eq!(fdt.start, 0x8000_0000 + (16 << 20) - (2 << 20));
        assert!(b.boot.harts.iter().all(|h| h.a1 == fdt.start));
        assert_eq!(b.boot.harts[511].a0, 511);
        let mut blob = vec![0u8; b.fdt.len()];
        b.ram.read_bytes(fdt.start, &mut blob).unwrap();
        assert_eq!(blob, b.fdt);
        assert!(Dtb::parse(&blob).unwrap().node("/cpus/cpu@1ff").is_some());
    }

    #[test]
    fn program_errors() {
        let s = Scratch::new("spike-errors");
        let mut elf = tiny_elf(0x8000_0000, &[0; 4], 0, ET_EXEC);
        // Rename `tohost` so the program has none.
        let at = elf.windows(7).position(|w| w == b"tohost\0").unwrap();
        elf[at] = b'X';
        let e = crate::build(config(s.file("no-tohost.elf", &elf))).unwrap_err();
        assert!(matches!(e, Error::NoTohost { .. }), "{e}");
        assert!(e.to_string().contains("no-tohost.elf"));
        let e = crate::build(config(s.file("raw.bin", &[0x13; 16]))).unwrap_err();
        assert!(e.to_string().contains("ELF programs only"), "{e}");
        let mut c = config(s.file("t.elf", &tiny_elf(0x8000_0000, &[0; 4], 0, ET_EXEC)));
        c.bios = Bios::File("x".into());
        assert!(crate::build(c).is_err());
    }

    /// A program built by the cross compiler, linked the way riscv-tests are.
    #[test]
    fn runs_a_compiled_riscv_test() {
        let s = Scratch::new("spike-gcc");
        let src = s.file(
            "t.S",
            b".section .text.init\n.globl _start\n_start:\n  li t0, 1\n  la t1, tohost\n  sd t0, 0(t1)\n1: j 1b\n\
              .section .tohost,\"aw\",@progbits\n.align 6\n.globl tohost\ntohost: .dword 0\n\
              .align 6\n.globl fromhost\nfromhost: .dword 0\n\
              .data\n.globl begin_signature\nbegin_signature: .dword 1, 2\n.globl end_signature\nend_signature:\n",
        );
        let ld = s.file(
            "link.ld",
            b"OUTPUT_ARCH(riscv)\nENTRY(_start)\nSECTIONS {\n . = 0x80000000;\n .text.init : { *(.text.init) }\n . = ALIGN(0x1000);\n .tohost : { *(.tohost) }\n . = ALIGN(0x1000);\n .text : { *(.text) }\n . = ALIGN(0x1000);\n .data : { *(.data) }\n .bss : { *(.bss) }\n _end = .;\n}\n",
        );
        let elf = s.0.join("t.elf");
        let st = Command::new("riscv64-unknown-elf-gcc")
            .args([
                "-march=rv64g",
                "-mabi=lp64",
                "-static",
                "-nostdlib",
                "-nostartfiles",
                "-T",
            ])
            .arg(&ld)
            .arg(&src)
            .arg("-o")
            .arg(&elf)
            .status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!(
                "SKIPPED: riscv64-unknown-elf-gcc missing or failed; cannot build a test ELF"
            );
            return;
        }
        let ram = GuestRam::new(map::DRAM_BASE, 16 << 20).unwrap();
        let l = load(&config(elf.clone()), &ram).unwrap();
        assert_eq!(l.boot.harts[0].pc, 0x8000_0000);
        assert_eq!(l.tohost, 0x8000_1000);
        assert_eq!(l.fromhost, Some(0x8000_1040));
        let (b, e) = l.signature.unwrap();
        assert_eq!(e - b, 16);
        assert_eq!(ram.read(b, 8), Some(1));
        // `li t0, 1` is `addi t0, zero, 1`.
        assert_eq!(ram.read(0x8000_0000, 4), Some(0x0010_0293));
        let board = crate::build(config(elf)).unwrap();
        assert_eq!(board.signature, Some(b..e));
    }
}
