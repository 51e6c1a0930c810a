//! Buffered console output for devices that print (UART, HTIF).
//!
//! A guest prints one byte per MMIO store; handing each byte to the host sink would cost
//! a syscall per byte. Devices append to an in-memory buffer instead (one uncontended
//! lock, no syscall) and a writer thread hands the buffer to the sink when a line ends,
//! when the buffer grows large, when the guest has stopped printing for [`IDLE`], or at
//! the latest [`MAX_AGE`] after the first unwritten byte. The condition variable is
//! signalled only when the buffer goes from empty to non-empty or becomes urgent, so a
//! burst of output costs a couple of wake-ups, not one per byte.
//!
//! The buffer is bounded ([`CAPACITY`]): when the sink is slower than the guest, `push`
//! accepts fewer bytes than offered and the device holds its transmitter busy until the
//! writer calls the device's "room again" callback.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most bytes held for the sink at once.
pub const CAPACITY: usize = 1 << 20;
/// A pause in output this long flushes the buffer.
pub const IDLE: Duration = Duration::from_millis(2);
/// No byte waits longer than this (roughly) for the sink, even while output continues.
pub const MAX_AGE: Duration = Duration::from_millis(20);
/// A buffer this large is written at once.
const URGENT_LEN: usize = 64 << 10;

type RoomCallback = Box<dyn Fn() + Send + Sync>;

struct State {
    buf: Vec<u8>,
    /// A newline arrived or the buffer is large: write without waiting for idle.
    urgent: bool,
    /// When the oldest unwritten byte arrived.
    since: Option<Instant>,
    /// Bytes ever accepted; the writer compares it across [`IDLE`] to detect a pause.
    accepted: u64,
    /// `push` refused bytes or filled the buffer: call the room callback after writing.
    full: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Held while writing, so concurrent flushes keep the byte order.
    sink: Mutex<Box<dyn Write + Send>>,
    on_room: Mutex<Option<RoomCallback>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Writes out everything buffered so far. Takes the sink lock before the state lock
    /// (the only place both are held), and calls the room callback with neither held.
    fn write_out(&self) {
        let mut sink = lock(&self.sink);
        let (data, was_full) = {
            let mut st = lock(&self.state);
            st.urgent = false;
            st.since = None;
            (
                std::mem::take(&mut st.buf),
                std::mem::replace(&mut st.full, false),
            )
        };
        if !data.is_empty() {
            // A host sink that fails (closed pipe) loses the output, as a UART with no
            // cable attached does; the guest is not told.
            let _ = sink.write_all(&data);
            let _ = sink.flush();
        }
        drop(sink);
        if was_full {
            if let Some(cb) = lock(&self.on_room).as_ref() {
                cb();
            }
        }
    }

    fn run(&self) {
        let mut seen = 0u64;
        let mut st = lock(&self.state);
        loop {
            if st.buf.is_empty() {
                if st.shutdown {
                    return;
                }
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let old = st.since.is_some_and(|t| t.elapsed() >= MAX_AGE);
            if !(st.urgent || st.shutdown || st.accepted == seen || old) {
                seen = st.accepted;
                st = self
                    .wake
                    .wait_timeout(st, IDLE)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            seen = st.accepted;
            drop(st);
            self.write_out();
            st = lock(&self.state);
        }
    }
}

/// A byte sink with a writer thread. Dropping it writes out what is left.
pub struct BufferedOutput {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl BufferedOutput {
    pub fn new(sink: Box<dyn Write + Send>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::new(),
                urgent: false,
                since: None,
                accepted: 0,
                full: false,
                shutdown: false,
            }),
            wake: Condvar::new(),
            sink: Mutex::new(sink),
            on_room: Mutex::new(None),
        });
        let worker = {
            let shared = shared.clone();
            // Without a thread (the host refuses one) every push writes through: slower,
            // still correct.
            std::thread::Builder::new()
                .name("rivet-console-out".into())
                .spawn(move || shared.run())
                .ok()
        };
        Self { shared, worker }
    }

    /// Sets the callback the writer calls (with no lock of this buffer held) after
    /// writing out a buffer that had refused bytes or filled up.
    pub fn set_on_room(&self, cb: impl Fn() + Send + Sync + 'static) {
        *lock(&self.shared.on_room) = Some(Box::new(cb));
    }

    /// Appends as much of `data` as fits and returns how many bytes were taken.
    pub fn push(&self, data: &[u8]) -> usize {
        let mut st = lock(&self.shared.state);
        let n = data.len().min(CAPACITY.saturating_sub(st.buf.len()));
        if n < data.len() || st.buf.len() + n >= CAPACITY {
            st.full = true;
        }
        if n == 0 {
            return 0;
        }
        let was_empty = st.buf.is_empty();
        st.buf.extend_from_slice(&data[..n]);
        st.accepted += n as u64;
        if was_empty {
            st.since = Some(Instant::now());
        }
        let newly_urgent = !st.urgent && (data[..n].contains(&b'\n') || st.buf.len() >= URGENT_LEN);
        st.urgent |= newly_urgent;
        drop(st);
        if self.worker.is_none() {
            self.shared.write_out();
        } else if was_empty || newly_urgent {
            self.shared.wake.notify_one();
        }
        n
    }

    /// Whether another byte would be accepted now.
    pub fn has_room(&self) -> bool {
        lock(&self.shared.state).buf.len() < CAPACITY
    }

    /// Writes out everything buffered so far before returning (machine exit, tests).
    pub fn flush(&self) {
        self.shared.write_out();
    }
}

impl Drop for BufferedOutput {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        self.shared.write_out();
    }
}

/// A cloneable in-memory sink, for tests and for tools that capture console output.
#[derive(Clone, Default)]
pub struct SharedBuffer(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn contents(&self) -> Vec<u8> {
        lock(&self.0).clone()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink that counts write calls, to show output is batched.
    #[derive(Clone, Default)]
    struct Counting(SharedBuffer, Arc<AtomicUsize>);

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn wait_for(cond: impl Fn() -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn batches_bytes_and_flushes_on_idle() {
        let sink = Counting::default();
        let out = BufferedOutput::new(Box::new(sink.clone()));
        for &b in b"no newline here" {
            assert_eq!(out.push(&[b]), 1);
        }
        assert!(wait_for(|| sink.0.contents() == b"no newline here"));
        // Fifteen bytes pushed one by one reached the sink in very few writes.
        assert!(sink.1.load(Ordering::Relaxed) <= 3);
    }

    #[test]
    fn newline_flushes_promptly_and_drop_flushes_the_rest() {
        let sink = SharedBuffer::new();
        let out = BufferedOutput::new(Box::new(sink.clone()));
        out.push(b"line\n");
        assert!(wait_for(|| sink.contents() == b"line\n"));
        out.push(b"tail");
        drop(out);
        assert_eq!(sink.contents(), b"line\ntail");
    }

    #[test]
    fn refuses_bytes_beyond_capacity_and_reports_room() {
        /// A sink that blocks until released, like a stalled terminal.
        struct Gate(Arc<Mutex<()>>, SharedBuffer);
        impl Write for Gate {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let _g = lock(&self.0);
                self.1.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let held = lock(&gate);
        let data = SharedBuffer::new();
        let out = BufferedOutput::new(Box::new(Gate(gate.clone(), data.clone())));
        let rooms = Arc::new(AtomicUsize::new(0));
        {
            let rooms = rooms.clone();
            out.set_on_room(move || {
                rooms.fetch_add(1, Ordering::Relaxed);
            });
        }
        // The writer takes the first buffer and blocks in the sink; the second buffer
        // fills up and refuses the excess.
        let chunk = vec![b'x'; CAPACITY];
        assert_eq!(out.push(&chunk), CAPACITY);
        assert!(wait_for(|| out.has_room()));
        assert_eq!(out.push(&chunk[..CAPACITY / 2]), CAPACITY / 2);
        assert_eq!(out.push(&chunk), CAPACITY / 2);
        assert_eq!(out.push(b"y"), 0);
        assert!(!out.has_room());
        drop(held);
        // One callback after each of the two full buffers is written.
        assert!(wait_for(|| rooms.load(Ordering::Relaxed) == 2));
        assert!(out.has_room());
        let taken = 2 * CAPACITY;
        drop(out);
        assert_eq!(data.contents().len(), taken);
    }
}
