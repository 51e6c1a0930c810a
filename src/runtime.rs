//! The machine runtime: one host thread per hart (the work-stealing pool comes later),
//! WFI parking, and the power events that end a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rivet_devices::power::PowerEvent;
use rivet_machines::Board;

use crate::hart::{Hart, Shared};
use crate::interp::Interp;

/// Blocks a hart runs between timer checks and scheduling decisions.
const SLICE_BLOCKS: u32 = 2048;

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub stats: bool,
    pub trace: bool,
}

/// How a run ended, and what it did.
#[derive(Debug)]
pub struct RunResult {
    pub event: PowerEvent,
    pub instructions: u64,
    pub elapsed: Duration,
}

/// Runs `board` until the guest powers off, reboots or reports failure.
pub fn run(board: Board, opts: &RunOptions) -> RunResult {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        ram: board.ram.clone(),
        bus: board.bus.clone(),
        clock: board.clock.clone(),
        aclint: board.aclint.clone(),
        power: board.power.clone(),
        mmio_in_ram: board.mmio_in_ram.clone(),
    });
    let retired = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (id, boot) in board.boot.iter().enumerate() {
        let signals = board.harts[id].clone();
        let mut hart = Hart::new(id as u64, signals, shared.clone());
        hart.pc = boot.pc;
        hart.x[10] = boot.a0;
        hart.x[11] = boot.a1;
        hart.x[12] = boot.a2;
        hart.csr.misa = board.isa.misa();
        let retired = retired.clone();
        let trace = opts.trace;
        let t = std::thread::Builder::new()
            .name(format!("hart{id}"))
            .spawn(move || {
                run_hart(&mut hart, trace);
                retired.fetch_add(hart.instret, Ordering::Relaxed);
            })
            .expect("spawning a hart thread");
        threads.push(t);
    }
    let event = loop {
        if let Some(e) = board.power.event() {
            break e;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    for s in &board.harts {
        s.kick();
    }
    for t in threads {
        let _ = t.join();
    }
    board.flush_console();
    RunResult {
        event,
        instructions: retired.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

fn run_hart(h: &mut Hart, trace: bool) {
    let mut interp = Interp::new();
    interp.trace = trace;
    let power = h.shared.power.clone();
    while power.is_running() {
        interp.run(h, SLICE_BLOCKS);
        h.update_timers();
        if h.waiting {
            let seen = h.signals.generation();
            h.update_timers();
            if h.wfi_wakeup() || !power.is_running() {
                h.waiting = false;
                continue;
            }
            let deadline = (h.timer.next_deadline != u64::MAX)
                .then(|| h.shared.clock.instant_of(h.timer.next_deadline));
            h.signals.park(seen, deadline);
            h.update_timers();
            // Priv spec 3.3.3: WFI may resume on any event; the interrupt, if enabled,
            // is taken at the next block boundary.
            h.waiting = false;
        }
    }
}
