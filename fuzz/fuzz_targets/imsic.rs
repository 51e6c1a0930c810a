#![no_main]
//! The IMSIC through its two bus windows and the MSI path, interleaved with what the
//! owning harts do to their files through `*iselect`/`*ireg` and `*topei`. After every
//! step each file's output must match the hart signal it drives.

mod common;

use common::Access;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rivet_devices::imsic::{File, Imsic, NUM_IDS, VIRT_M_BASE, VIRT_S_BASE};
use rivet_devices::irq::{HartSignals, MsiSink, MEIP, SEIP};
use std::sync::Arc;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A hart's access to the machine-level window.
    MWindow(Access),
    /// A hart's access to the supervisor-level window.
    SWindow(Access),
    /// An MSI from a bus master, anywhere near the windows.
    Msi {
        addr: u32,
        data: u32,
    },
    /// An indirect register access by the owning hart: `file` picks M, S or a guest.
    Ireg {
        hart: u8,
        file: u8,
        sel: u8,
        value: u64,
        how: u8,
    },
    Claim {
        hart: u8,
        file: u8,
    },
    SaveRestore {
        hart: u8,
        file: u8,
        into: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    harts: u8,
    guests: u8,
    ops: Vec<Op>,
}

fn file(
    imsic: &Imsic,
    hart: u8,
    which: u8,
) -> Option<(usize, Arc<rivet_devices::imsic::HartFiles>, u8)> {
    let h = usize::from(hart) % imsic.harts();
    let files = imsic.hart(h)?;
    let n = 2 + files.geilen();
    Some((h, files, which % n))
}

fn pick(files: &rivet_devices::imsic::HartFiles, which: u8) -> &File {
    match which {
        0 => &files.m,
        1 => &files.s,
        g => files.guest(u64::from(g - 1)).expect("guest index in range"),
    }
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.harts % 4) + 1;
    let signals: Vec<_> = (0..n).map(|_| Arc::new(HartSignals::new())).collect();
    let imsic = Imsic::new(&signals, input.guests % 9);
    let (m, s) = (imsic.m_window(), imsic.s_window());
    let (m_size, s_size) = (imsic.m_window_size(), imsic.s_window_size());
    for op in &input.ops {
        match op {
            Op::MWindow(a) => a.apply(&*m, m_size, n),
            Op::SWindow(a) => a.apply(&*s, s_size, n),
            Op::Msi { addr, data } => {
                let base = if addr & 1 != 0 {
                    VIRT_S_BASE
                } else {
                    VIRT_M_BASE
                };
                imsic.msi(
                    base - 0x1000 + u64::from(*addr >> 1) % (s_size + 0x2000),
                    *data,
                );
            }
            Op::Ireg {
                hart,
                file: f,
                sel,
                value,
                how,
            } => {
                let Some((_, files, w)) = file(&imsic, *hart, *f) else {
                    continue;
                };
                let f = pick(&files, w);
                let sel = 0x70 + u64::from(*sel % 0x90);
                let _ = match how % 4 {
                    0 => f.read(sel),
                    1 => f.modify(sel, |_| *value),
                    2 => f.modify(sel, |old| old | value),
                    _ => f.modify(sel, |old| old & !value),
                };
            }
            Op::Claim { hart, file: f } => {
                let Some((_, files, w)) = file(&imsic, *hart, *f) else {
                    continue;
                };
                let f = pick(&files, w);
                let top = f.topei();
                assert_eq!(top >> 16, top & 0x7ff);
                assert!(top & 0x7ff <= u64::from(NUM_IDS));
                assert_eq!(f.claim(), top);
            }
            Op::SaveRestore {
                hart,
                file: f,
                into,
            } => {
                let Some((_, files, w)) = file(&imsic, *hart, *f) else {
                    continue;
                };
                let state = pick(&files, w).save();
                let Some((_, dst, w2)) = file(&imsic, *hart, *into) else {
                    continue;
                };
                let target = pick(&dst, w2);
                target.restore(&state);
                assert_eq!(
                    target.save(),
                    state,
                    "restore then save gives the state back"
                );
            }
        }
        for (h, sig) in signals.iter().enumerate() {
            let files = imsic.hart(h).expect("every hart has files");
            assert_eq!(sig.pending() & MEIP != 0, files.m.output());
            assert_eq!(sig.pending() & SEIP != 0, files.s.output());
            for g in 1..=files.geilen() {
                let f = files.guest(u64::from(g)).expect("guest file");
                assert_eq!(sig.hgeip() >> g & 1 != 0, f.output());
            }
        }
    }
});
