//! Goldfish RTC (Android emulator's real-time clock, QEMU `goldfish_rtc` at 0x10_1000 on
//! the virt board): nanoseconds since the Unix epoch from the host's wall clock, and one
//! alarm.
//!
//! | offset | register                                                     |
//! |--------|--------------------------------------------------------------|
//! | 0x00   | TIME_LOW: low 32 bits of the time; latches the high half     |
//! | 0x04   | TIME_HIGH: the latched high half                             |
//! | 0x08   | ALARM_LOW: writing it arms the alarm at ALARM_HIGH:ALARM_LOW |
//! | 0x0c   | ALARM_HIGH                                                   |
//! | 0x10   | IRQ_ENABLED (bit 0)                                          |
//! | 0x14   | CLEAR_ALARM (write)                                          |
//! | 0x18   | ALARM_STATUS (read: alarm armed)                             |
//! | 0x1c   | CLEAR_INTERRUPT (write)                                      |
//!
//! Writing TIME_LOW / TIME_HIGH sets the clock (kept as an offset from host time), as
//! QEMU does. Registers are 32 bits; other access sizes read 0 and write nothing. The
//! interrupt line is high while an alarm interrupt is pending and enabled.
//!
//! An armed alarm is timed by a thread started on first use; the thread sleeps on a
//! condition variable until the alarm time, and ends when the device is dropped.

use crate::bus::MmioDevice;
use crate::irq::IrqLine;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Size of the MMIO window on the virt board.
pub const SIZE: u64 = 0x1000;

const TIME_LOW: u64 = 0x00;
const TIME_HIGH: u64 = 0x04;
const ALARM_LOW: u64 = 0x08;
const ALARM_HIGH: u64 = 0x0c;
const IRQ_ENABLED: u64 = 0x10;
const CLEAR_ALARM: u64 = 0x14;
const ALARM_STATUS: u64 = 0x18;
const CLEAR_INTERRUPT: u64 = 0x1c;

/// The alarm thread re-checks at least this often, so a host clock step is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(1);

fn host_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

struct State {
    /// Guest time minus host time, wrapping.
    offset: u64,
    time_high: u32,
    alarm_next: u64,
    alarm_running: bool,
    irq_pending: bool,
    irq_enabled: bool,
    irq_level: bool,
    shutdown: bool,
}

impl State {
    fn now(&self) -> u64 {
        host_ns().wrapping_add(self.offset)
    }
}

struct Inner {
    irq: Arc<dyn IrqLine>,
    st: Mutex<State>,
    wake: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, st: &mut State) {
        let level = st.irq_pending && st.irq_enabled;
        if level != st.irq_level {
            st.irq_level = level;
            self.irq.set_level(level);
        }
    }

    /// Fires the alarm if it is due; returns how long until it is due otherwise.
    fn check_alarm(&self, st: &mut State) -> Option<Duration> {
        if !st.alarm_running {
            return None;
        }
        let now = st.now();
        if now >= st.alarm_next {
            st.alarm_running = false;
            st.irq_pending = true;
            self.update(st);
            None
        } else {
            Some(Duration::from_nanos(st.alarm_next - now))
        }
    }

    fn run(&self) {
        let mut st = self.lock();
        while !st.shutdown {
            st = match self.check_alarm(&mut st) {
                Some(wait) => {
                    self.wake
                        .wait_timeout(st, wait.min(MAX_SLEEP))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

pub struct GoldfishRtc {
    inner: Arc<Inner>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl GoldfishRtc {
    pub fn new(irq: Arc<dyn IrqLine>) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(Inner {
                irq,
                st: Mutex::new(State {
                    offset: 0,
                    time_high: 0,
                    alarm_next: 0,
                    alarm_running: false,
                    irq_pending: false,
                    irq_enabled: false,
                    irq_level: false,
                    shutdown: false,
                }),
                wake: Condvar::new(),
            }),
            worker: Mutex::new(None),
        })
    }

    /// Arms the alarm at `alarm_next`, or raises the interrupt at once when that time has
    /// passed (QEMU `goldfish_rtc_set_alarm`).
    fn set_alarm(&self, st: &mut State) {
        if st.alarm_next <= st.now() {
            st.alarm_running = false;
            st.irq_pending = true;
            self.inner.update(st);
            return;
        }
        st.alarm_running = true;
        let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        if worker.is_none() {
            let inner = self.inner.clone();
            // Without a thread the alarm never fires; the clock itself still works.
            *worker = std::thread::Builder::new()
                .name("rivet-rtc-alarm".into())
                .spawn(move || inner.run())
                .ok();
        }
        self.inner.wake.notify_one();
    }
}

impl Drop for GoldfishRtc {
    fn drop(&mut self) {
        self.inner.lock().shutdown = true;
        self.inner.wake.notify_one();
        if let Some(w) = self
            .worker
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = w.join();
        }
    }
}

impl MmioDevice for GoldfishRtc {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        if size != 4 {
            return 0;
        }
        let mut st = self.inner.lock();
        let v = match offset {
            TIME_LOW => {
                let now = st.now();
                st.time_high = (now >> 32) as u32;
                now as u32
            }
            TIME_HIGH => st.time_high,
            ALARM_LOW => st.alarm_next as u32,
            ALARM_HIGH => (st.alarm_next >> 32) as u32,
            IRQ_ENABLED => u32::from(st.irq_enabled),
            ALARM_STATUS => u32::from(st.alarm_running),
            _ => 0,
        };
        u64::from(v)
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        if size != 4 {
            return;
        }
        let value = value & 0xffff_ffff;
        let mut st = self.inner.lock();
        match offset {
            TIME_LOW | TIME_HIGH => {
                let now = st.now();
                let new = if offset == TIME_LOW {
                    (now & !0xffff_ffff) | value
                } else {
                    (now & 0xffff_ffff) | (value << 32)
                };
                st.offset = st.offset.wrapping_add(new.wrapping_sub(now));
                // The alarm is in guest time: re-time it against the moved clock.
                if st.alarm_running {
                    self.inner.wake.notify_one();
                }
            }
            ALARM_LOW => {
                st.alarm_next = (st.alarm_next & !0xffff_ffff) | value;
                self.set_alarm(&mut st);
            }
            ALARM_HIGH => st.alarm_next = (st.alarm_next & 0xffff_ffff) | (value << 32),
            IRQ_ENABLED => {
                st.irq_enabled = value & 1 != 0;
                self.inner.update(&mut st);
            }
            CLEAR_ALARM => st.alarm_running = false,
            CLEAR_INTERRUPT => {
                st.irq_pending = false;
                self.inner.update(&mut st);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::RecordingLine;
    use std::time::Instant;

    fn rtc() -> (Arc<GoldfishRtc>, Arc<RecordingLine>) {
        let line = Arc::new(RecordingLine::default());
        (GoldfishRtc::new(line.clone()), line)
    }

    fn time(r: &GoldfishRtc) -> u64 {
        let lo = r.read(0, TIME_LOW, 4);
        let hi = r.read(0, TIME_HIGH, 4);
        hi << 32 | lo
    }

    #[test]
    fn reads_wall_clock_time() {
        let (r, _) = rtc();
        let host = host_ns();
        let t = time(&r);
        assert!(t >= host && t - host < 5_000_000_000, "{t} vs {host}");
        // Year 2020 or later, in nanoseconds.
        assert!(t > 1_577_836_800_000_000_000);
    }

    #[test]
    fn setting_the_time_moves_the_clock() {
        let (r, _) = rtc();
        r.write(0, TIME_HIGH, 4, 0);
        r.write(0, TIME_LOW, 4, 1000);
        let t = time(&r);
        assert!((1000..1000 + 5_000_000_000).contains(&t), "{t}");
    }

    #[test]
    fn past_alarm_fires_at_once_and_respects_enable() {
        let (r, line) = rtc();
        r.write(0, ALARM_HIGH, 4, 0);
        r.write(0, ALARM_LOW, 4, 1);
        assert_eq!(r.read(0, ALARM_STATUS, 4), 0);
        assert!(!line.level(), "interrupt not enabled yet");
        r.write(0, IRQ_ENABLED, 4, 1);
        assert!(line.level());
        assert_eq!(r.read(0, IRQ_ENABLED, 4), 1);
        r.write(0, CLEAR_INTERRUPT, 4, 0);
        assert!(!line.level());
        assert_eq!(line.history(), vec![true, false]);
    }

    #[test]
    fn future_alarm_fires_later_and_can_be_cleared() {
        let (r, line) = rtc();
        r.write(0, IRQ_ENABLED, 4, 1);
        let at = time(&r) + 30_000_000; // 30 ms ahead
        r.write(0, ALARM_HIGH, 4, at >> 32);
        r.write(0, ALARM_LOW, 4, at & 0xffff_ffff);
        assert_eq!(r.read(0, ALARM_STATUS, 4), 1);
        assert_eq!(r.read(0, ALARM_LOW, 4), at & 0xffff_ffff);
        assert!(!line.level());
        let t0 = Instant::now();
        while !line.level() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(line.level(), "alarm fired");
        assert!(time(&r) >= at);
        assert_eq!(r.read(0, ALARM_STATUS, 4), 0);
        r.write(0, CLEAR_INTERRUPT, 4, 0);

        let at = time(&r) + 20_000_000;
        r.write(0, ALARM_HIGH, 4, at >> 32);
        r.write(0, ALARM_LOW, 4, at & 0xffff_ffff);
        r.write(0, CLEAR_ALARM, 4, 0);
        std::thread::sleep(Duration::from_millis(60));
        assert!(!line.level(), "a cleared alarm does not fire");
    }

    #[test]
    fn other_sizes_and_offsets_are_inert() {
        let (r, line) = rtc();
        r.write(0, IRQ_ENABLED, 8, 1);
        assert_eq!(r.read(0, IRQ_ENABLED, 4), 0);
        assert_eq!(r.read(0, TIME_LOW, 8), 0);
        for off in (0..0x40).chain([SIZE - 4, u64::MAX]) {
            for size in [1, 2, 4, 8] {
                r.read(0, off, size);
            }
        }
        assert!(!line.level());
    }
}
