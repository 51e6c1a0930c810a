#![no_main]
//! The NS16550A UART through its bus interface, with host input arriving in between.

mod common;

use common::Access;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rivet_devices::irq::NoIrq;
use rivet_devices::uart16550::{Uart16550, SIZE};
use std::sync::Arc;

#[derive(Arbitrary, Debug)]
enum Op {
    Access(Access),
    /// Host input; never blocks (the fuzzer is the only thread).
    Input(Vec<u8>),
}

fuzz_target!(|ops: Vec<Op>| {
    let uart = Uart16550::new(Arc::new(NoIrq), Box::new(std::io::sink()));
    for op in &ops {
        match op {
            Op::Access(a) => a.apply(&*uart, SIZE, 1),
            Op::Input(bytes) => {
                uart.try_push_input(bytes);
            }
        }
    }
    uart.flush();
});
