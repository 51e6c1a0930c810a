#![no_main]
//! The PLIC through its bus interface, with device lines changing level in between.

mod common;

use common::Access;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rivet_devices::bus::MmioDevice;
use rivet_devices::irq::HartSignals;
use rivet_devices::plic::{Plic, CONTEXT_BASE, CONTEXT_STRIDE, VIRT_SIZE};
use std::sync::Arc;

#[derive(Arbitrary, Debug)]
enum Op {
    Access(Access),
    /// Claim-register access of a context, so claims and completions are common.
    Claim {
        ctx: u8,
        complete: Option<u16>,
    },
    Line {
        source: u16,
        high: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    harts: u8,
    sources: u16,
    edge_mask: u64,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.harts % 4) + 1;
    let sources = u32::from(input.sources % 1030);
    let harts: Vec<_> = (0..n).map(|_| Arc::new(HartSignals::new())).collect();
    let Ok(plic) = Plic::new(sources, harts) else {
        return;
    };
    let lines: Vec<_> = (1..sources)
        .filter_map(|id| {
            if input.edge_mask >> (id % 64) & 1 != 0 {
                plic.edge_line(id).ok()
            } else {
                plic.line(id).ok()
            }
        })
        .collect();
    for op in &input.ops {
        match op {
            Op::Access(a) => a.apply(&*plic, VIRT_SIZE, n),
            Op::Claim { ctx, complete } => {
                let off = CONTEXT_BASE + CONTEXT_STRIDE * u64::from(*ctx) + 4;
                match complete {
                    Some(id) => plic.write(0, off, 4, u64::from(*id)),
                    None => {
                        let id = plic.read(0, off, 4);
                        assert!(id < u64::from(sources.max(1)));
                    }
                }
            }
            Op::Line { source, high } => {
                if let Some(l) = lines.get(usize::from(*source)) {
                    l.set_level(*high);
                }
            }
        }
    }
});
