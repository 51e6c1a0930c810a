#![no_main]
//! ACLINT MSWI + MTIMER and SSWI through their bus interfaces.

mod common;

use common::Access;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rivet_devices::aclint::{Aclint, Sswi, SIZE, SSWI_SIZE};
use rivet_devices::bus::MmioDevice;
use rivet_devices::clock::Clock;
use rivet_devices::irq::{HartSignals, MSIP};
use std::sync::Arc;

#[derive(Arbitrary, Debug)]
struct Input {
    harts: u8,
    ops: Vec<(bool, Access)>,
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.harts % 8) + 1;
    let harts: Vec<_> = (0..n).map(|_| Arc::new(HartSignals::new())).collect();
    let Ok(aclint) = Aclint::new(harts.clone(), Clock::new()) else {
        return;
    };
    let Ok(sswi) = Sswi::new(harts.clone()) else {
        return;
    };
    for (to_sswi, a) in &input.ops {
        if *to_sswi {
            a.apply(&*sswi, SSWI_SIZE, n);
        } else {
            a.apply(&*aclint, SIZE, n);
        }
    }
    // msip reads back what each hart sees.
    for (h, sig) in harts.iter().enumerate() {
        let msip = aclint.read(0, 4 * h as u64, 4);
        assert_eq!(msip == 1, sig.pending() & MSIP != 0);
    }
});
