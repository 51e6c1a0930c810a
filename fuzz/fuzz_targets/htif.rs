#![no_main]
//! HTIF through its bus interface, with guest RAM for the syscall proxy.

mod common;

use common::Access;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rivet_devices::htif::Htif;
use rivet_devices::power::PowerControl;
use rivet_devices::ram::GuestRam;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;

#[derive(Arbitrary, Debug)]
struct Input {
    tohost: u16,
    fromhost: Option<u16>,
    /// Bytes placed in RAM, so syscall blocks and buffers can be well-formed.
    ram: Vec<(u16, u64)>,
    ops: Vec<Access>,
}

fuzz_target!(|input: Input| {
    let Ok(ram) = GuestRam::new(RAM_BASE, 0x1_0000) else {
        return;
    };
    let ram = Arc::new(ram);
    for &(at, v) in &input.ram {
        let _ = ram.write(RAM_BASE + u64::from(at & !7), 8, v);
    }
    let power = Arc::new(PowerControl::new());
    let tohost = RAM_BASE + u64::from(input.tohost);
    let fromhost = input.fromhost.map(|f| RAM_BASE + u64::from(f));
    let Ok(htif) = Htif::new(
        power,
        Box::new(std::io::sink()),
        Some(ram),
        tohost,
        fromhost,
    ) else {
        return;
    };
    for a in &input.ops {
        a.apply(&*htif, htif.size(), 1);
    }
});
