//! The host console: stdin in raw mode feeding the guest UART, with QEMU's escape keys
//! (Ctrl-A X quits, Ctrl-A Ctrl-A sends Ctrl-A; Ctrl-A C is reserved for a monitor).

use std::io::Read;
use std::sync::Arc;

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

/// Starts the stdin reader thread; `deliver` hands bytes to the guest's UART and may
/// block while the UART's FIFO is full.
pub fn spawn_input(power: Arc<PowerControl>, deliver: impl Fn(&[u8]) + Send + 'static) {
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
                            power.request(PowerEvent::PowerOff);
                            return;
                        }
                        Key::None => {}
                    }
                }
                if !out.is_empty() {
                    deliver(&out);
                }
            }
        })
        .expect("spawning the console thread");
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
