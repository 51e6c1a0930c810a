//! The host console: stdin in raw mode feeding the guest UART, with QEMU's escape keys
//! (Ctrl-A X quits, Ctrl-A Ctrl-A sends Ctrl-A; Ctrl-A C is reserved for a monitor).

use std::io::Read;
use std::sync::{Arc, Mutex};

use rivet_devices::uart16550::Uart16550;

use rivet_devices::power::{PowerControl, PowerEvent};

const CTRL_A: u8 = 0x01;

/// Puts a terminal stdin into raw mode and restores it when dropped.
pub struct RawMode {
    saved: Option<libc::termios>,
}

impl RawMode {
    pub fn enable() -> Self {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
            return Self { saved: None };
        }
        // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor and
        // we check its result before using the value.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return Self { saved: None };
        }
        let saved = t;
        // SAFETY: cfmakeraw only edits the struct we own.
        unsafe { libc::cfmakeraw(&mut t) };
        // Keep output post-processing so host-side messages still start a new line.
        t.c_oflag |= libc::OPOST;
        // SAFETY: valid descriptor and fully initialised termios.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) };
        Self { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes read in enable() on the same descriptor.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) };
        }
    }
}

/// What a byte of console input means after escape processing.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    Guest(u8),
    Quit,
    None,
}

/// QEMU's Ctrl-A escape state machine.
#[derive(Default)]
pub struct Escape {
    pending: bool,
}

impl Escape {
    pub fn feed(&mut self, b: u8) -> Key {
        if self.pending {
            self.pending = false;
            return match b {
                b'x' | b'X' => Key::Quit,
                CTRL_A => Key::Guest(CTRL_A),
                _ => Key::None,
            };
        }
        if b == CTRL_A {
            self.pending = true;
            return Key::None;
        }
        Key::Guest(b)
    }
}

/// The machine that console input currently goes to: its UART and its power control
/// (for Ctrl-A X). A reboot swaps in the new machine's.
#[derive(Clone)]
pub struct Target {
    pub uart: Arc<Uart16550>,
    pub power: Arc<PowerControl>,
}

/// Where the stdin thread delivers; `None` while no machine runs.
pub type Slot = Arc<Mutex<Option<Target>>>;

/// Starts the stdin reader thread, delivering to whatever `slot` holds.
pub fn spawn_input(slot: Slot) {
    std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let mut esc = Escape::default();
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    match esc.feed(b) {
                        Key::Guest(g) => out.push(g),
                        Key::Quit => {
                            eprintln!("\r\nrivet: terminated by Ctrl-A X");
                            if let Some(t) = slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
                            {
                                t.power.request(PowerEvent::PowerOff);
                            }
                            return;
                        }
                        Key::None => {}
                    }
                }
                deliver(&slot, &out);
            }
        })
        .expect("spawning the console thread");
}

/// Feeds `bytes` to the current UART, waiting while its receive FIFO is full (the
/// lock is not held while waiting, so a reboot can swap machines meanwhile).
fn deliver(slot: &Slot, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let taken = match slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(t) if t.power.is_running() => t.uart.try_push_input(bytes),
            _ => 0,
        };
        bytes = &bytes[taken..];
        if !bytes.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keys() {
        let mut e = Escape::default();
        assert_eq!(e.feed(b'a'), Key::Guest(b'a'));
        assert_eq!(e.feed(CTRL_A), Key::None);
        assert_eq!(e.feed(CTRL_A), Key::Guest(CTRL_A));
        assert_eq!(e.feed(CTRL_A), Key::None);
        assert_eq!(e.feed(b'c'), Key::None);
        assert_eq!(e.feed(b'x'), Key::Guest(b'x'));
        assert_eq!(e.feed(CTRL_A), Key::None);
        assert_eq!(e.feed(b'x'), Key::Quit);
    }
}
