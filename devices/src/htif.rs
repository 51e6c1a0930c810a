//! HTIF (Berkeley host-target interface) as Spike's front end and QEMU's `riscv_htif`
//! implement it: the `tohost` / `fromhost` doublewords of a bare-metal ELF, mapped by the
//! `spike` board at the ELF's `tohost` / `fromhost` symbols.
//!
//! A non-zero doubleword written to `tohost` is a command: device in bits 63:56, command
//! in 55:48, payload in 47:0. The device reads it, clears `tohost` to 0 and, when the
//! command has a reply, writes `device:command:reply` to `fromhost`; the guest consumes
//! the reply by writing 0 to `fromhost`.
//!
//! - Device 0 (system), command 0: payload bit 0 set = exit with code payload >> 1
//!   (0 = pass => [`PowerEvent::PowerOff`], otherwise [`PowerEvent::Fail`]); bit 0 clear
//!   = payload is the address of a 64-byte "magic memory" syscall block (riscv-tests'
//!   `syscall()`): `write` (64) to fd 1 or 2 and `exit` (93) are served, the result goes
//!   to the block's first doubleword, reply 1.
//! - Device 1 (console), command 1: putchar of the payload's low byte, reply
//!   0x100 | byte. Command 0 (getchar) gets no reply: no input is attached.
//!
//! A command is taken when the write covers the top byte of `tohost` (one 64-bit store,
//! or the high half after the low half on RV32, as QEMU requires). Old riscv-tests loop
//! on a 32-bit store of the low half only; a second low-half store with no high-half
//! store in between takes the pending command, so those tests finish too.

use crate::bus::MmioDevice;
use crate::output::BufferedOutput;
use crate::power::{PowerControl, PowerEvent};
use crate::ram::GuestRam;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest distance the window between `tohost` and `fromhost` may span.
pub const MAX_WINDOW: u64 = 0x1_0000;
/// Most bytes one proxied `write` syscall transfers.
const MAX_WRITE: u64 = 1 << 20;

const SYS_WRITE: u64 = 64;
const SYS_EXIT: u64 = 93;
const EBADF: i64 = 9;
const ENOSYS: i64 = 38;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HtifError {
    #[error("HTIF tohost ({tohost:#x}) and fromhost ({fromhost:#x}) overlap")]
    Overlap { tohost: u64, fromhost: u64 },
    #[error("HTIF tohost ({tohost:#x}) and fromhost ({fromhost:#x}) are too far apart to map as one window")]
    TooFarApart { tohost: u64, fromhost: u64 },
    #[error("HTIF register at {0:#x} runs past the end of the address space")]
    Overflow(u64),
}

struct State {
    tohost: u64,
    fromhost: u64,
    /// A store reached the low bytes of `tohost` but not its top byte yet.
    low_pending: bool,
}

pub struct Htif {
    power: Arc<PowerControl>,
    out: BufferedOutput,
    ram: Option<Arc<GuestRam>>,
    base: u64,
    size: u64,
    tohost_off: u64,
    fromhost_off: u64,
    st: Mutex<State>,
}

/// `reg` (8 bytes at window offset `at`) updated by a store of `size` bytes of `value` at
/// `off`; `None` if the store misses it, else the new value and whether byte 7 was
/// written.
fn merge(reg: u64, at: u64, off: u64, size: u8, value: u64) -> Option<(u64, bool)> {
    let mut reg = reg;
    let (mut hit, mut top) = (false, false);
    for i in 0..u64::from(size.min(8)) {
        let Some(k) = off.checked_add(i).and_then(|a| a.checked_sub(at)) else {
            continue;
        };
        if k < 8 {
            let byte = (value >> (8 * i)) & 0xff;
            reg = (reg & !(0xff << (8 * k))) | (byte << (8 * k));
            hit = true;
            top |= k == 7;
        }
    }
    hit.then_some((reg, top))
}

impl Htif {
    /// An HTIF at the guest-physical addresses of the ELF's `tohost` and `fromhost`
    /// symbols (`fromhost` defaults to the doubleword after `tohost`). `ram` lets the
    /// device serve proxied syscalls; without it they fail with ENOSYS-like replies.
    /// Map the result at [`Htif::base`] with [`Htif::size`].
    pub fn new(
        power: Arc<PowerControl>,
        out: Box<dyn Write + Send>,
        ram: Option<Arc<GuestRam>>,
        tohost: u64,
        fromhost: Option<u64>,
    ) -> Result<Arc<Self>, HtifError> {
        let fromhost = match fromhost {
            Some(f) => f,
            None => tohost.checked_add(8).ok_or(HtifError::Overflow(tohost))?,
        };
        if tohost.abs_diff(fromhost) < 8 {
            return Err(HtifError::Overlap { tohost, fromhost });
        }
        for r in [tohost, fromhost] {
            r.checked_add(8).ok_or(HtifError::Overflow(r))?;
        }
        let base = tohost.min(fromhost);
        let size = tohost.max(fromhost) + 8 - base;
        if size > MAX_WINDOW {
            return Err(HtifError::TooFarApart { tohost, fromhost });
        }
        Ok(Arc::new(Self {
            power,
            out: BufferedOutput::new(out),
            ram,
            base,
            size,
            tohost_off: tohost - base,
            fromhost_off: fromhost - base,
            st: Mutex::new(State {
                tohost: 0,
                fromhost: 0,
                low_pending: false,
            }),
        }))
    }

    /// Guest-physical base of the window (the lower of `tohost` and `fromhost`).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size of the window, covering both registers.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes out buffered console output before returning.
    pub fn flush(&self) {
        self.out.flush();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exit(&self, code: u64) {
        self.power.request(match code {
            0 => PowerEvent::PowerOff,
            c => PowerEvent::Fail(u32::try_from(c).unwrap_or(u32::MAX)),
        });
    }

    /// Serves the syscall block at `magic`; returns the value for its first doubleword.
    fn syscall(&self, ram: &GuestRam, magic: u64) -> Option<u64> {
        let mut block = [0u8; 64];
        ram.read_bytes(magic, &mut block)?;
        let arg = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&block[8 * i..8 * i + 8]);
            u64::from_le_bytes(b)
        };
        let ret = match arg(0) {
            SYS_WRITE if matches!(arg(1), 1 | 2) => {
                let len = arg(3).min(MAX_WRITE);
                let mut buf = vec![0u8; len as usize];
                match ram.read_bytes(arg(2), &mut buf) {
                    Some(()) => self.out.push(&buf) as i64,
                    // Linux returns EFAULT here; the riscv-tests proxies never pass a
                    // bad buffer, so a plain error code is enough.
                    None => -14,
                }
            }
            SYS_WRITE => -EBADF,
            SYS_EXIT => {
                self.exit(arg(1));
                0
            }
            _ => -ENOSYS,
        };
        Some(ret as u64)
    }

    /// Runs the command in `tohost` and clears it.
    fn command(&self, st: &mut State) {
        let cmd = std::mem::take(&mut st.tohost);
        if cmd == 0 {
            return;
        }
        let (device, command, payload) = (cmd >> 56, (cmd >> 48) & 0xff, cmd & 0xffff_ffff_ffff);
        let reply = match (device, command) {
            (0, 0) if payload & 1 != 0 => {
                self.exit(payload >> 1);
                return;
            }
            (0, 0) => {
                if let Some(ram) = &self.ram {
                    if let Some(ret) = self.syscall(ram, payload) {
                        let _ = ram.write(payload, 8, ret);
                    }
                }
                1
            }
            (1, 1) => {
                let byte = payload & 0xff;
                self.out.push(&[byte as u8]);
                0x100 | byte
            }
            // Getchar with no input attached, and unknown devices: no reply.
            _ => return,
        };
        st.fromhost = (cmd & !0xffff_ffff_ffff) | reply;
    }
}

impl MmioDevice for Htif {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        let st = self.lock();
        let mut v = 0u64;
        for i in 0..u64::from(size.min(8)) {
            let Some(a) = offset.checked_add(i) else {
                break;
            };
            let byte = [
                (self.tohost_off, st.tohost),
                (self.fromhost_off, st.fromhost),
            ]
            .iter()
            .find_map(|&(at, reg)| {
                a.checked_sub(at)
                    .filter(|&k| k < 8)
                    .map(|k| (reg >> (8 * k)) & 0xff)
            })
            .unwrap_or(0);
            v |= byte << (8 * i);
        }
        v
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        let mut st = self.lock();
        if let Some((new, top)) = merge(st.tohost, self.tohost_off, offset, size, value) {
            if top {
                st.tohost = new;
                st.low_pending = false;
                self.command(&mut st);
            } else {
                if st.low_pending {
                    self.command(&mut st);
                }
                st.tohost =
                    merge(st.tohost, self.tohost_off, offset, size, value).map_or(new, |(v, _)| v);
                st.low_pending = true;
            }
        }
        if let Some((new, _)) = merge(st.fromhost, self.fromhost_off, offset, size, value) {
            st.fromhost = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::SharedBuffer;

    const TOHOST: u64 = 0x8000_1000;
    const FROMHOST: u64 = 0x8000_1040;

    struct Rig {
        htif: Arc<Htif>,
        power: Arc<PowerControl>,
        out: SharedBuffer,
        ram: Arc<GuestRam>,
    }

    fn rig() -> Rig {
        let power = Arc::new(PowerControl::new());
        let out = SharedBuffer::new();
        let ram = Arc::new(GuestRam::new(0x8000_0000, 0x10_0000).unwrap());
        let htif = Htif::new(
            power.clone(),
            Box::new(out.clone()),
            Some(ram.clone()),
            TOHOST,
            Some(FROMHOST),
        )
        .unwrap();
        Rig {
            htif,
            power,
            out,
            ram,
        }
    }

    impl Rig {
        fn tohost(&self, size: u8, at: u64, v: u64) {
            self.htif.write(0, TOHOST - self.htif.base() + at, size, v);
        }
        fn fromhost(&self) -> u64 {
            self.htif.read(0, FROMHOST - self.htif.base(), 8)
        }
    }

    #[test]
    fn window_covers_both_registers() {
        let r = rig();
        assert_eq!(r.htif.base(), TOHOST);
        assert_eq!(r.htif.size(), 0x48);
        let power = Arc::new(PowerControl::new());
        let h = Htif::new(power.clone(), Box::new(std::io::sink()), None, 0x100, None).unwrap();
        assert_eq!((h.base(), h.size()), (0x100, 16));
        let h = Htif::new(
            power.clone(),
            Box::new(std::io::sink()),
            None,
            0x140,
            Some(0x100),
        );
        assert_eq!(h.map(|h| (h.base(), h.size())).ok(), Some((0x100, 0x48)));
        let sink = || Box::new(std::io::sink());
        assert!(Htif::new(power.clone(), sink(), None, 0x100, Some(0x104)).is_err());
        assert!(Htif::new(power.clone(), sink(), None, 0, Some(1 << 30)).is_err());
        assert!(Htif::new(power, sink(), None, u64::MAX - 3, None).is_err());
    }

    #[test]
    fn exit_codes() {
        let r = rig();
        r.tohost(8, 0, 1);
        assert_eq!(r.power.event(), Some(PowerEvent::PowerOff));
        let r = rig();
        r.tohost(8, 0, 5 << 1 | 1);
        assert_eq!(r.power.event(), Some(PowerEvent::Fail(5)));
        assert_eq!(r.htif.read(0, 0, 8), 0, "tohost is cleared once read");
    }

    #[test]
    fn rv32_halves_and_low_only_loops() {
        let r = rig();
        r.tohost(4, 0, 7 << 1 | 1);
        assert_eq!(r.power.event(), None, "waits for the high half");
        r.tohost(4, 4, 0);
        assert_eq!(r.power.event(), Some(PowerEvent::Fail(7)));
        let r = rig();
        r.tohost(4, 0, 1);
        r.tohost(4, 0, 1);
        assert_eq!(r.power.event(), Some(PowerEvent::PowerOff));
    }

    #[test]
    fn console_putchar_and_fromhost_handshake() {
        let r = rig();
        for &b in b"ok\n" {
            assert_eq!(r.fromhost(), 0);
            r.tohost(8, 0, 1 << 56 | 1 << 48 | u64::from(b));
            assert_eq!(r.fromhost(), 1 << 56 | 1 << 48 | 0x100 | u64::from(b));
            r.htif.write(0, FROMHOST - TOHOST, 8, 0);
        }
        // RV32: low half then high half.
        r.tohost(4, 0, u64::from(b'!'));
        r.tohost(4, 4, 0x0101_0000);
        r.htif.flush();
        assert_eq!(r.out.contents(), b"ok\n!");
        assert_eq!(r.power.event(), None);
    }

    #[test]
    fn syscall_proxy_write_and_exit() {
        let r = rig();
        let magic = 0x8000_2000;
        let msg = 0x8000_3000;
        r.ram.write_bytes(msg, b"hello").unwrap();
        for (i, v) in [SYS_WRITE, 1, msg, 5].into_iter().enumerate() {
            r.ram.write(magic + 8 * i as u64, 8, v).unwrap();
        }
        r.tohost(8, 0, magic);
        assert_eq!(r.fromhost(), 1);
        assert_eq!(r.ram.read(magic, 8), Some(5));
        r.htif.flush();
        assert_eq!(r.out.contents(), b"hello");
        // A bad fd (the block's first doubleword now holds the result: refill it).
        r.ram.write(magic, 8, SYS_WRITE).unwrap();
        r.ram.write(magic + 8, 8, 7).unwrap();
        r.tohost(8, 0, magic);
        assert_eq!(r.ram.read(magic, 8), Some(-EBADF as u64));
        // Unknown syscall.
        r.ram.write(magic, 8, 12345).unwrap();
        r.tohost(8, 0, magic);
        assert_eq!(r.ram.read(magic, 8), Some(-ENOSYS as u64));
        // A block outside RAM is answered without touching memory.
        r.tohost(8, 0, 0x10);
        assert_eq!(r.fromhost(), 1);
        for (i, v) in [SYS_EXIT, 3].into_iter().enumerate() {
            r.ram.write(magic + 8 * i as u64, 8, v).unwrap();
        }
        r.tohost(8, 0, magic);
        assert_eq!(r.power.event(), Some(PowerEvent::Fail(3)));
    }

    #[test]
    fn stray_accesses_are_harmless() {
        let r = rig();
        for off in (0..r.htif.size() + 8).chain([u64::MAX - 7, u64::MAX]) {
            for size in [1, 2, 4, 8] {
                r.htif.read(0, off, size);
                r.htif.write(0, off, size, 0x0200_0000_0000_0000);
            }
        }
        assert_eq!(r.power.event(), None);
    }
}
