#![no_main]
//! The SiFive test finisher through its bus interface.

mod common;

use common::Access;
use libfuzzer_sys::fuzz_target;
use rivet_devices::power::PowerControl;
use rivet_devices::syscon::{SifiveTest, SIZE};
use std::sync::Arc;

fuzz_target!(|ops: Vec<Access>| {
    let power = Arc::new(PowerControl::new());
    let dev = SifiveTest::new(power.clone());
    for a in &ops {
        a.apply(&*dev, SIZE, 1);
    }
    // Only a write to offset 0 can stop the machine.
    if power.event().is_some() {
        assert!(ops.iter().any(|a| a.write && a.offset(SIZE) == 0));
    }
});
