//! Rivet's devices. Every device is reached only through [`bus::MmioDevice`]: it sees an
//! offset into its own window and the id of the hart that accesses it, never the rest of
//! the machine. Devices raise interrupts through [`irq`] lines and hart signal words.

pub mod bus;
pub mod clock;
pub mod irq;
pub mod power;
pub mod ram;
