//! The machine runtime: one host thread per hart (the work-stealing pool comes later),
//! WFI parking, the timer loop, and the power events that end a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rivet_devices::power::PowerEvent;
use rivet_machines::Board;

use crate::engine::cache::FlushStats;
use crate::engine::{CodeCache, DispatchStats, Interp, Jit, JitStats};
use crate::hart::{Hart, Shared};

/// Blocks a hart runs between timer checks and scheduling decisions.
const SLICE_BLOCKS: u32 = 2048;

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub stats: bool,
    pub trace: bool,
    /// Compile hot blocks with Cranelift (tier 1).
    pub jit: bool,
    /// Cross-check compiled blocks against the interpreter.
    pub lockstep: bool,
    /// Interpreted runs of a block before tier 1 compiles it.
    pub jit_threshold: u32,
    pub jit_sync: bool,
    pub jit_cache_mib: u32,
}

/// How a run ended, and what it did.
#[derive(Debug)]
pub struct RunResult {
    pub event: PowerEvent,
    pub instructions: u64,
    pub elapsed: Duration,
    /// What the compiler threads did (when tier 1 ran).
    pub jit: Option<JitStats>,
    /// How the harts found and ran their blocks, summed over harts.
    pub dispatch: DispatchStats,
    /// The code cache: decoded instructions held at the end, and its flushes.
    pub cached_insns: usize,
    pub flushes: FlushStats,
    /// Hypervisor and TLB counters, summed over harts.
    pub harts: crate::hart::HartStats,
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
        timer_loop: Default::default(),
    });
    let retired = Arc::new(AtomicU64::new(0));
    let cache = CodeCache::new(jit(opts), board.harts.clone(), crate::engine::cache::BLOCK_BUDGET);
    let dispatch = Arc::new(Mutex::new(DispatchStats::default()));
    let hart_stats = Arc::new(Mutex::new(crate::hart::HartStats::default()));
    let mut threads = Vec::new();
    for (id, boot) in board.boot.iter().enumerate() {
        let signals = board.harts[id].clone();
        let mut hart = Hart::new(id as u64, signals, shared.clone());
        hart.pc = boot.pc;
        hart.x[10] = boot.a0;
        hart.x[11] = boot.a1;
        hart.x[12] = boot.a2;
        hart.csr.misa = board.isa.misa();
        hart.exts = board.isa.ext_set();
        if let Some(files) = board.imsic.as_ref().and_then(|i| i.hart(id)) {
            // GEILEN is the number of guest files, which only a hart with H can use.
            if hart.exts.has(rivet_jit::arch::Ext::H) {
                hart.geilen = files.geilen();
            }
            hart.imsic = Some(files);
        }
        hart.max_satp_mode = match board.isa.mmu {
            rivet_machines::MmuType::Sv39 => 8,
            rivet_machines::MmuType::Sv48 => 9,
            rivet_machines::MmuType::Sv57 => 10,
        };
        let retired = retired.clone();
        let dispatch = dispatch.clone();
        let mut interp = Interp::new(cache.clone());
        interp.trace = opts.trace;
        interp.lockstep = opts.lockstep && cache.jit.is_some();
        let hart_stats = hart_stats.clone();
        let t = std::thread::Builder::new()
            .name(format!("hart{id}"))
            .spawn(move || {
                run_hart(&mut hart, &mut interp);
                retired.fetch_add(hart.instret, Ordering::Relaxed);
                if let Ok(mut d) = dispatch.lock() {
                    d.add(&interp.stats);
                }
                if let Ok(mut total) = hart_stats.lock() {
                    total.add(&hart.stats());
                }
            })
            .expect("spawning a hart thread");
        threads.push(t);
    }
    // This thread is the machine's timer loop: it asks a hart running compiled code
    // to return when one of its timer deadlines passes (compiled code chains without
    // looking at the clock), and it waits for the run to end.
    let event = loop {
        let seen = shared.timer_loop.generation();
        if let Some(e) = board.power.event() {
            break e;
        }
        let now = shared.clock.mtime();
        let mut next = u64::MAX;
        for s in &board.harts {
            let d = s.deadline();
            if d <= now {
                s.deadline_reached(d);
            } else {
                next = next.min(d);
            }
        }
        // Power events are polled.
        let poll = Instant::now() + Duration::from_millis(5);
        let until = match next {
            u64::MAX => poll,
            t => shared.clock.instant_of(t).min(poll),
        };
        shared.timer_loop.park(seen, Some(until));
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
        jit: cache.jit.as_ref().map(Jit::stats),
        dispatch: dispatch.lock().map(|d| *d).unwrap_or_default(),
        cached_insns: cache.insns(),
        flushes: cache.flush_stats(),
        harts: hart_stats.lock().map(|s| *s).unwrap_or_default(),
    }
}

/// The compiler service `opts` asks for, if any.
fn jit(opts: &RunOptions) -> Option<Jit> {
    // Compiled code does not trace: `--trace` keeps every instruction interpreted.
    if !opts.jit || opts.trace {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = crate::engine::Tier1Options {
        threshold: opts.jit_threshold.max(1),
        chaining: !opts.lockstep,
        sync: opts.lockstep || opts.jit_sync,
        cache_bytes: opts.jit_cache_mib as usize * 1024 * 1024,
        threads: crate::engine::compiler_threads(cores),
    };
    match Jit::new(options) {
        Ok(j) => Some(j),
        Err(e) => {
            eprintln!(
                "rivet: {}; the harts run interpreted",
                crate::launch::error_chain(&e)
            );
            None
        }
    }
}

/// Runs one hart until the machine stops.
fn run_hart(h: &mut Hart, interp: &mut Interp) {
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
