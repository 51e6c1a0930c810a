#![no_main]
//! The APLIC through the windows of both its domains, with source lines changing level
//! in between, in each delivery mode.

mod common;

use common::Access;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rivet_devices::aplic::{
    Aplic, AplicConfig, AplicWindow, Delivery, Domain, MsiAddrCfg, CLAIMI, DOMAINCFG, IDC_BASE,
    IDC_SIZE, IDELIVERY, IFORCE, TOPI, VIRT_WINDOW_SIZE,
};
use rivet_devices::bus::MmioDevice;
use rivet_devices::irq::{HartSignals, MsiSink, MEIP, SEIP};
use std::sync::Arc;

/// Takes every MSI the APLIC sends; its data is an EIID, 11 bits.
struct Sink;

impl MsiSink for Sink {
    fn msi(&self, _addr: u64, data: u32) {
        assert!(data < 1 << 11, "MSI data {data:#x} is no EIID");
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Access {
        supervisor: bool,
        access: Access,
    },
    /// An aligned word write inside the register file, so registers are hit often.
    Register {
        supervisor: bool,
        offset: u16,
        value: u32,
    },
    Claim {
        supervisor: bool,
        hart: u8,
    },
    Line {
        source: u16,
        high: bool,
    },
    SaveRestore,
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    harts: u8,
    sources: u16,
    iprio_bits: u8,
    delivery: u8,
    preset: Option<(u8, bool)>,
    ops: Vec<Op>,
}

fn reg(w: &AplicWindow, off: u64) -> u32 {
    w.read(0, off, 4) as u32
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.harts % 4) + 1;
    let delivery =
        [Delivery::Direct, Delivery::Msi, Delivery::Both][usize::from(input.delivery % 3)];
    let config = AplicConfig {
        num_sources: u32::from(input.sources % 1030),
        iprio_bits: u32::from(input.iprio_bits % 10),
        delivery,
        msi_addr: input.preset.map(|(guests, lock)| {
            let cfg = MsiAddrCfg::virt(n, u32::from(guests % 8));
            if lock {
                cfg.locked()
            } else {
                cfg
            }
        }),
    };
    let harts: Vec<_> = (0..n).map(|_| Arc::new(HartSignals::new())).collect();
    let Ok(aplic) = Aplic::new(config, harts.clone(), Arc::new(Sink)) else {
        return;
    };
    let windows = [
        aplic.window(Domain::Machine),
        aplic.window(Domain::Supervisor),
    ];
    let lines: Vec<_> = (1..=config.num_sources)
        .filter_map(|id| aplic.line(id).ok())
        .collect();
    for op in &input.ops {
        match op {
            Op::Access { supervisor, access } => {
                access.apply(&*windows[usize::from(*supervisor)], VIRT_WINDOW_SIZE, n)
            }
            Op::Register {
                supervisor,
                offset,
                value,
            } => {
                let off = u64::from(*offset) % (IDC_BASE + IDC_SIZE * 5) & !3;
                windows[usize::from(*supervisor)].write(0, off, 4, u64::from(*value));
            }
            Op::Claim { supervisor, hart } => {
                let off = IDC_BASE + IDC_SIZE * u64::from(*hart % 5) + CLAIMI;
                let top = windows[usize::from(*supervisor)].read(0, off, 4);
                assert!(top >> 16 <= u64::from(config.num_sources));
            }
            Op::Line { source, high } => {
                if let Some(l) = lines.get(usize::from(*source)) {
                    l.set_level(*high);
                }
            }
            Op::SaveRestore => {
                let state = aplic.save();
                aplic.restore(&state).unwrap();
                assert_eq!(aplic.save(), state, "a saved state restores as it was");
            }
            Op::Reset => aplic.reset(),
        }
    }
    // Each IDC's output is what its registers say (AIA "Interrupt delivery and
    // handling").
    for (w, mask) in windows.iter().zip([MEIP, SEIP]) {
        let cfg = reg(w, DOMAINCFG);
        for (h, sig) in harts.iter().enumerate() {
            let idc = IDC_BASE + IDC_SIZE * h as u64;
            let asserted = cfg & 0x104 == 0x100
                && reg(w, idc + IDELIVERY) == 1
                && (reg(w, idc + IFORCE) == 1 || reg(w, idc + TOPI) != 0);
            assert_eq!(sig.pending() & mask != 0, asserted, "hart {h}");
        }
    }
});
