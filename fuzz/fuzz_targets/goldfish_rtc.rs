#![no_main]
//! The Goldfish RTC through its bus interface.

mod common;

use common::Access;
use libfuzzer_sys::fuzz_target;
use rivet_devices::goldfish_rtc::{GoldfishRtc, SIZE};
use rivet_devices::irq::NoIrq;
use std::sync::Arc;

fuzz_target!(|ops: Vec<Access>| {
    let rtc = GoldfishRtc::new(Arc::new(NoIrq));
    for a in &ops {
        a.apply(&*rtc, SIZE, 1);
    }
});
