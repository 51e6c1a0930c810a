//! NS16550A UART, register-compatible with QEMU's `serial` device on the virt board
//! (`ns16550a` at 0x1000_0000, register shift 0, one byte per register).
//!
//! Registers (offset & 7; DLAB = LCR bit 7):
//! 0 RBR (read) / THR (write) / DLL (DLAB), 1 IER / DLM (DLAB), 2 IIR (read) / FCR
//! (write), 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR.
//!
//! Transmission is instantaneous: a THR write hands the byte to a [`BufferedOutput`] and
//! the transmitter is empty again at once (LSR.THRE|TEMT stay set), unless that buffer is
//! full because the host sink is slow; then THRE stays clear until the writer drains it,
//! so a guest that polls THRE waits instead of losing output.
//!
//! Reception: the host pushes bytes with [`Uart16550::push_input`], which waits while the
//! receive FIFO (16 bytes, 1 with FIFOs disabled) is full. The character-timeout
//! interrupt (IIR = 0xC) is taken as due as soon as the input source pauses with bytes
//! below the trigger level left in the FIFO (host input arrives in bursts, so "four
//! character times of silence" is the end of a burst); it stays due while the FIFO holds
//! data and no input is arriving, as QEMU re-arms its timeout on every RBR read.
//!
//! Interrupt identification follows the 16550 priority order: receiver line status,
//! received data available / character timeout, THR empty, modem status. The THRE
//! interrupt is pending when IER.ETBEI is set and THR is empty; reading IIR while it
//! reports THRE, or writing THR, clears it (16550 datasheet, "Interrupt Control
//! Functions").

use crate::bus::MmioDevice;
use crate::irq::IrqLine;
use crate::output::BufferedOutput;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Size of the MMIO window on the virt board.
pub const SIZE: u64 = 0x100;

const FIFO_LEN: usize = 16;

const IER_RDI: u8 = 0x01;
const IER_THRI: u8 = 0x02;
const IER_RLSI: u8 = 0x04;
const IER_MSI: u8 = 0x08;

const IIR_NO_INT: u8 = 0x01;
const IIR_MSI: u8 = 0x00;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_RLSI: u8 = 0x06;
const IIR_CTI: u8 = 0x0c;
const IIR_ID: u8 = 0x0f;
const IIR_FIFO_ENABLED: u8 = 0xc0;

const FCR_FE: u8 = 0x01;
const FCR_RFR: u8 = 0x02;
const FCR_XFR: u8 = 0x04;

const LCR_DLAB: u8 = 0x80;

const MCR_LOOP: u8 = 0x10;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_BI: u8 = 0x10;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
/// Overrun, parity, framing errors and break: the receiver-line-status sources.
const LSR_INT_ANY: u8 = 0x1e;

const MSR_DCD: u8 = 0x80;
const MSR_DSR: u8 = 0x20;
const MSR_CTS: u8 = 0x10;
const MSR_ANY_DELTA: u8 = 0x0f;

struct Regs {
    ier: u8,
    iir: u8,
    fcr: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    rx: VecDeque<u8>,
    rx_trigger: usize,
    thr_ipending: bool,
    timeout_ipending: bool,
    /// The output buffer refused the last byte: the transmitter is busy.
    tx_blocked: bool,
    /// A `push_input` call is between bytes of its burst.
    input_active: bool,
    /// Threads waiting in `push_input` for FIFO space.
    input_waiters: u32,
    /// The level last driven on the interrupt line.
    irq_level: bool,
}

impl Regs {
    fn new() -> Self {
        Self {
            ier: 0,
            iir: IIR_NO_INT,
            fcr: 0,
            lcr: 0,
            // QEMU resets MCR to OUT2, which PC-style drivers need to route the IRQ.
            mcr: 0x08,
            lsr: LSR_THRE | LSR_TEMT,
            msr: MSR_DCD | MSR_DSR | MSR_CTS,
            scr: 0,
            dll: 0,
            dlm: 0,
            rx: VecDeque::with_capacity(FIFO_LEN),
            rx_trigger: 1,
            thr_ipending: false,
            timeout_ipending: false,
            tx_blocked: false,
            input_active: false,
            input_waiters: 0,
            irq_level: false,
        }
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_FE != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_LEN
        } else {
            1
        }
    }

    /// The character timeout is due whenever data waits and no input is arriving.
    fn rearm_timeout(&mut self) {
        self.timeout_ipending = self.fifo_enabled() && !self.rx.is_empty() && !self.input_active;
    }

    /// Recomputes IIR and drives the interrupt line when its level changes.
    fn update_irq(&mut self, irq: &dyn IrqLine) {
        let id = if self.ier & IER_RLSI != 0 && self.lsr & LSR_INT_ANY != 0 {
            IIR_RLSI
        } else if self.ier & IER_RDI != 0 && self.timeout_ipending {
            IIR_CTI
        } else if self.ier & IER_RDI != 0
            && self.lsr & LSR_DR != 0
            && (!self.fifo_enabled() || self.rx.len() >= self.rx_trigger)
        {
            IIR_RDI
        } else if self.ier & IER_THRI != 0 && self.thr_ipending {
            IIR_THRI
        } else if self.ier & IER_MSI != 0 && self.msr & MSR_ANY_DELTA != 0 {
            IIR_MSI
        } else {
            IIR_NO_INT
        };
        self.iir = (self.iir & !IIR_ID) | id;
        let level = id != IIR_NO_INT;
        if level != self.irq_level {
            self.irq_level = level;
            irq.set_level(level);
        }
    }

    /// Takes up to the free FIFO space from `bytes`; returns how many.
    fn receive(&mut self, bytes: &[u8]) -> usize {
        let n = bytes
            .len()
            .min(self.rx_capacity().saturating_sub(self.rx.len()));
        if n > 0 {
            self.rx.extend(&bytes[..n]);
            self.lsr |= LSR_DR;
        }
        n
    }
}

struct Inner {
    regs: Mutex<Regs>,
    /// Signalled when the guest frees FIFO space and an input thread waits for it.
    rx_space: Condvar,
    irq: Arc<dyn IrqLine>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Regs> {
        self.regs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the output writer once its buffer has room again.
    fn transmitter_ready(&self) {
        let mut r = self.lock();
        if r.tx_blocked {
            r.tx_blocked = false;
            r.lsr |= LSR_THRE | LSR_TEMT;
            r.thr_ipending = true;
            r.update_irq(&*self.irq);
        }
    }
}

/// An NS16550A UART. Lock order: UART registers, then the interrupt controller the line
/// leads to, then the output buffer.
pub struct Uart16550 {
    inner: Arc<Inner>,
    out: BufferedOutput,
}

impl Uart16550 {
    pub fn new(irq: Arc<dyn IrqLine>, out: Box<dyn Write + Send>) -> Arc<Self> {
        let inner = Arc::new(Inner {
            regs: Mutex::new(Regs::new()),
            rx_space: Condvar::new(),
            irq,
        });
        let out = BufferedOutput::new(out);
        let weak = Arc::downgrade(&inner);
        out.set_on_room(move || {
            if let Some(inner) = weak.upgrade() {
                inner.transmitter_ready();
            }
        });
        Arc::new(Self { inner, out })
    }

    /// Feeds host input to the receiver, waiting while the receive FIFO is full.
    /// Returns once every byte is in the FIFO (the guest may not have read them yet).
    pub fn push_input(&self, mut bytes: &[u8]) {
        let inner = &*self.inner;
        let mut r = inner.lock();
        r.input_active = true;
        while !bytes.is_empty() {
            let n = r.receive(bytes);
            bytes = &bytes[n..];
            r.update_irq(&*inner.irq);
            if !bytes.is_empty() {
                r.input_waiters += 1;
                r = inner.rx_space.wait(r).unwrap_or_else(|e| e.into_inner());
                r.input_waiters -= 1;
            }
        }
        r.input_active = false;
        r.rearm_timeout();
        r.update_irq(&*inner.irq);
    }

    /// Feeds as much host input as fits now, without waiting; returns how many bytes
    /// were taken. A caller that gets fewer than offered retries the rest later.
    pub fn try_push_input(&self, bytes: &[u8]) -> usize {
        let mut r = self.inner.lock();
        let n = r.receive(bytes);
        if n == bytes.len() {
            r.rearm_timeout();
        }
        r.update_irq(&*self.inner.irq);
        n
    }

    /// Writes out buffered guest output before returning (call it when the machine
    /// stops, before the process exits).
    pub fn flush(&self) {
        self.out.flush();
    }

    fn read_reg(&self, reg: u64) -> u8 {
        let inner = &*self.inner;
        let mut r = inner.lock();
        let dlab = r.lcr & LCR_DLAB != 0;
        match reg {
            0 if dlab => r.dll,
            0 => {
                let b = r.rx.pop_front().unwrap_or(0);
                if r.rx.is_empty() {
                    r.lsr &= !(LSR_DR | LSR_BI);
                }
                r.rearm_timeout();
                r.update_irq(&*inner.irq);
                if r.input_waiters > 0 {
                    inner.rx_space.notify_all();
                }
                b
            }
            1 if dlab => r.dlm,
            1 => r.ier,
            2 => {
                let v = r.iir;
                if v & IIR_ID == IIR_THRI {
                    r.thr_ipending = false;
                    r.update_irq(&*inner.irq);
                }
                v
            }
            3 => r.lcr,
            4 => r.mcr,
            5 => {
                let v = r.lsr;
                if v & (LSR_BI | LSR_OE) != 0 {
                    r.lsr &= !(LSR_BI | LSR_OE);
                    r.update_irq(&*inner.irq);
                }
                v
            }
            6 => {
                if r.mcr & MCR_LOOP != 0 {
                    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
                    let m = r.mcr;
                    ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
                } else {
                    let v = r.msr;
                    r.msr &= !MSR_ANY_DELTA;
                    r.update_irq(&*inner.irq);
                    v
                }
            }
            _ => r.scr,
        }
    }

    fn write_reg(&self, reg: u64, v: u8) {
        let inner = &*self.inner;
        let mut r = inner.lock();
        let dlab = r.lcr & LCR_DLAB != 0;
        match reg {
            0 if dlab => r.dll = v,
            0 => {
                if r.tx_blocked {
                    // The host sink is behind and THRE is clear: a byte written anyway
                    // overwrites the busy holding register and is lost, as on hardware.
                    return;
                }
                self.out.push(&[v]);
                if self.out.has_room() {
                    r.lsr |= LSR_THRE | LSR_TEMT;
                    r.thr_ipending = true;
                } else {
                    r.tx_blocked = true;
                    r.lsr &= !(LSR_THRE | LSR_TEMT);
                    r.thr_ipending = false;
                }
                r.update_irq(&*inner.irq);
            }
            1 if dlab => r.dlm = v,
            1 => {
                let changed = (r.ier ^ v) & 0x0f;
                r.ier = v & 0x0f;
                if changed & IER_THRI != 0 {
                    // Enabling ETBEI with THR empty raises THRE at once (QEMU does the
                    // same; Linux's 8250 driver relies on it to start transmission).
                    r.thr_ipending = r.ier & IER_THRI != 0 && r.lsr & LSR_THRE != 0;
                }
                r.update_irq(&*inner.irq);
            }
            2 => {
                let mut v = v;
                // Toggling the FIFO enable clears both FIFOs.
                if (v ^ r.fcr) & FCR_FE != 0 {
                    v |= FCR_RFR | FCR_XFR;
                }
                if v & FCR_RFR != 0 {
                    r.rx.clear();
                    r.lsr &= !(LSR_DR | LSR_BI);
                    r.timeout_ipending = false;
                    if r.input_waiters > 0 {
                        inner.rx_space.notify_all();
                    }
                }
                if v & FCR_XFR != 0 && !r.tx_blocked {
                    r.lsr |= LSR_THRE | LSR_TEMT;
                    r.thr_ipending = true;
                }
                r.fcr = v & 0xc9;
                if r.fifo_enabled() {
                    r.iir |= IIR_FIFO_ENABLED;
                    r.rx_trigger = [1, 4, 8, 14][usize::from(v >> 6)];
                } else {
                    r.iir &= !IIR_FIFO_ENABLED;
                    r.rx_trigger = 1;
                }
                r.update_irq(&*inner.irq);
            }
            3 => r.lcr = v,
            4 => r.mcr = v & 0x1f,
            // LSR and MSR are read-only.
            5 | 6 => {}
            _ => r.scr = v,
        }
    }
}

impl MmioDevice for Uart16550 {
    /// Any access width reaches the byte register at `offset & 7` (QEMU aliases the
    /// eight registers across the window the same way).
    fn read(&self, _hart: usize, offset: u64, _size: u8) -> u64 {
        u64::from(self.read_reg(offset & 7))
    }

    fn write(&self, _hart: usize, offset: u64, _size: u8, value: u64) {
        self.write_reg(offset & 7, value as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::SharedBuffer;
    use crate::testutil::RecordingLine;
    use std::time::{Duration, Instant};

    const RBR: u64 = 0;
    const THR: u64 = 0;
    const IER: u64 = 1;
    const IIR: u64 = 2;
    const FCR: u64 = 2;
    const LCR: u64 = 3;
    const LSR: u64 = 5;
    const MSR: u64 = 6;
    const SCR: u64 = 7;

    fn uart() -> (Arc<Uart16550>, Arc<RecordingLine>, SharedBuffer) {
        let line = Arc::new(RecordingLine::default());
        let sink = SharedBuffer::new();
        let u = Uart16550::new(line.clone(), Box::new(sink.clone()));
        (u, line, sink)
    }

    fn rd(u: &Uart16550, off: u64) -> u8 {
        u.read(0, off, 1) as u8
    }

    fn wr(u: &Uart16550, off: u64, v: u8) {
        u.write(0, off, 1, u64::from(v))
    }

    #[test]
    fn reset_state() {
        let (u, line, _) = uart();
        assert_eq!(rd(&u, IIR), IIR_NO_INT);
        assert_eq!(rd(&u, LSR), LSR_THRE | LSR_TEMT);
        assert_eq!(rd(&u, MSR), 0xb0);
        assert!(!line.level());
    }

    #[test]
    fn transmits_to_the_sink_and_flushes() {
        let (u, _, sink) = uart();
        for &b in b"hello" {
            assert_ne!(rd(&u, LSR) & LSR_THRE, 0);
            wr(&u, THR, b);
        }
        u.flush();
        assert_eq!(sink.contents(), b"hello");
    }

    #[test]
    fn divisor_latch_shadows_rbr_and_ier() {
        let (u, _, sink) = uart();
        wr(&u, IER, 0x05);
        wr(&u, LCR, LCR_DLAB | 3);
        wr(&u, 0, 0x12);
        wr(&u, 1, 0x34);
        assert_eq!(rd(&u, 0), 0x12);
        assert_eq!(rd(&u, 1), 0x34);
        wr(&u, LCR, 3);
        assert_eq!(rd(&u, IER), 0x05);
        u.flush();
        assert!(sink.contents().is_empty(), "a DLL write is not output");
    }

    #[test]
    fn scratch_register_and_aliasing() {
        let (u, _, _) = uart();
        wr(&u, SCR, 0xa5);
        assert_eq!(rd(&u, SCR), 0xa5);
        assert_eq!(rd(&u, SCR + 8), 0xa5);
        assert_eq!(u.read(0, SCR, 4), 0xa5);
    }

    #[test]
    fn thre_interrupt_set_by_ier_cleared_by_iir_read_and_thr_write() {
        let (u, line, _) = uart();
        wr(&u, IER, IER_THRI);
        assert!(line.level());
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_THRI);
        assert!(!line.level(), "reading IIR that reports THRE clears it");
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_NO_INT);
        wr(&u, THR, b'a');
        assert!(line.level(), "THR empties again at once and re-raises THRE");
        wr(&u, IER, 0);
        assert!(!line.level());
    }

    #[test]
    fn receive_fifo_levels_and_interrupt_priority() {
        let (u, line, _) = uart();
        wr(&u, FCR, FCR_FE | 0x80); // trigger level 8
        assert_eq!(rd(&u, IIR) & 0xc0, 0xc0);
        wr(&u, IER, IER_RDI | IER_THRI);
        // THRE pending first.
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_THRI);
        assert_eq!(u.try_push_input(&[1; 20]), 16);
        assert_eq!(rd(&u, LSR) & LSR_DR, LSR_DR);
        // Received data (16 >= trigger 8) outranks THRE.
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_RDI);
        assert!(line.level());
        for _ in 0..9 {
            assert_eq!(rd(&u, RBR), 1);
        }
        // 7 left, below the trigger, input stopped: character timeout.
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_CTI);
        for _ in 0..7 {
            rd(&u, RBR);
        }
        assert_eq!(rd(&u, LSR) & LSR_DR, 0);
        assert_eq!(rd(&u, RBR), 0, "an empty FIFO reads 0");
        // Only THRE is left (cleared by the first IIR read, re-raised by nothing).
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_NO_INT);
        assert!(!line.level());
    }

    #[test]
    fn complete_burst_below_trigger_times_out() {
        let (u, line, _) = uart();
        wr(&u, FCR, FCR_FE | 0xc0); // trigger 14
        wr(&u, IER, IER_RDI);
        assert_eq!(u.try_push_input(&[7; 3]), 3);
        assert!(line.level(), "a complete burst below the trigger times out");
        wr(&u, FCR, FCR_FE | FCR_RFR | 0xc0);
        assert!(!line.level());
        assert_eq!(rd(&u, LSR) & LSR_DR, 0);
    }

    #[test]
    fn non_fifo_mode_holds_one_byte() {
        let (u, line, _) = uart();
        wr(&u, IER, IER_RDI);
        assert_eq!(u.try_push_input(b"ab"), 1);
        assert!(line.level());
        assert_eq!(rd(&u, IIR), IIR_RDI);
        assert_eq!(rd(&u, RBR), b'a');
        assert!(!line.level());
        assert_eq!(u.try_push_input(b"b"), 1);
        assert_eq!(rd(&u, RBR), b'b');
    }

    #[test]
    fn push_input_waits_for_the_guest_to_read() {
        let (u, _, _) = uart();
        wr(&u, FCR, FCR_FE);
        let data: Vec<u8> = (0..40).collect();
        let feeder = {
            let u = u.clone();
            let data = data.clone();
            std::thread::spawn(move || u.push_input(&data))
        };
        let mut got = Vec::new();
        let t0 = Instant::now();
        while got.len() < data.len() && t0.elapsed() < Duration::from_secs(10) {
            if rd(&u, LSR) & LSR_DR != 0 {
                got.push(rd(&u, RBR));
            } else {
                std::thread::yield_now();
            }
        }
        feeder.join().unwrap();
        assert_eq!(
            got, data,
            "no byte dropped or reordered under back-pressure"
        );
    }

    #[test]
    fn line_status_interrupt_outranks_data() {
        let (u, line, _) = uart();
        wr(&u, IER, IER_RLSI | IER_RDI);
        u.inner.lock().lsr |= LSR_BI;
        u.try_push_input(b"x");
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_RLSI);
        assert_ne!(rd(&u, LSR) & LSR_BI, 0);
        // Reading LSR cleared BI, so received data is next.
        assert_eq!(rd(&u, IIR) & IIR_ID, IIR_RDI);
        rd(&u, RBR);
        assert!(!line.level());
    }

    #[test]
    fn loopback_reflects_modem_control_in_msr() {
        let (u, _, _) = uart();
        wr(&u, 4, MCR_LOOP | 0x0a);
        assert_eq!(rd(&u, MSR) & 0xf0, 0x90);
    }

    #[test]
    fn no_access_panics() {
        let (u, _, _) = uart();
        for off in 0..SIZE {
            for size in [1, 2, 4, 8] {
                u.write(3, off, size, u64::MAX);
                u.read(3, off, size);
                u.write(0, off, size, 0);
            }
        }
    }
}
