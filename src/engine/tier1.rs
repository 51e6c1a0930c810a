//! Tier 1: compiles hot blocks with rivet-jit's Cranelift backend and runs them.
//!
//! This module hands the backend what it cannot know itself: the layout of the hart
//! state compiled code touches ([`layout`], from `offset_of!` on the `#[repr(C)]`
//! [`Hart`]) and the helper functions compiled code calls ([`HELPERS`]). Each hart owns
//! one [`Tier1`] (one code module and code cache): blocks the interpreter has run
//! [`DEFAULT_THRESHOLD`] times are queued to the hart's compiler thread (or compiled
//! on the spot with `--jit-sync`), and their code is installed between slices.
//!
//! Code lifetime: cranelift-jit frees only whole modules, so invalidation is coarse.
//! A block whose bytes changed (found after `fence.i`) is dropped and its code left
//! unreachable (link epochs unlink chains to it); when the code cache is three
//! quarters full, or too many blocks died, the engine drops every block and the whole
//! module is freed at once ([`Tier1::flush`]); compile results from before a flush are
//! discarded by generation.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

use rivet_jit::backend::{
    self, BlockFn, Compiler, CsrRead, Entry, Helpers, L1Layout, MemKind, Member, StateLayout,
    Thunks, EXIT_CHAIN, EXIT_NEXT, EXIT_TRAP, MEM_DONE, MEM_HIT,
};

use super::blocks::Block;
use rivet_jit::frontend::Insn;

use crate::hart::mmu::Access;
use crate::hart::tlb::{self, L1Entry};
use crate::hart::Hart;

/// Interpreted runs of a block before it is compiled.
pub const DEFAULT_THRESHOLD: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("Cannot start the Cranelift backend")]
    Backend(#[source] backend::Error),
    #[error("Cannot start the compiler thread")]
    Thread(#[source] std::io::Error),
}

/// What the compiler threads did, for `--stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JitStats {
    pub blocks: u64,
    pub insns: u64,
    pub compile_time: Duration,
    pub failures: u64,
}

/// The hart state layout compiled code is built against.
pub fn layout() -> StateLayout {
    use std::mem::offset_of;
    StateLayout {
        x: offset_of!(Hart, x) as i32,
        pc: offset_of!(Hart, pc) as i32,
        instret: offset_of!(Hart, instret) as i32,
        l1_data: offset_of!(Hart, l1_data) as i32,
        chain_key: offset_of!(Hart, chain_key) as i32,
        helper_status: offset_of!(Hart, helper_status) as i32,
        prv: offset_of!(Hart, prv) as i32,
        virt: offset_of!(Hart, virt) as i32,
        csr_reads: CSR_READS,
        f: offset_of!(Hart, f) as i32,
        mstatus: (offset_of!(Hart, csr) + offset_of!(crate::hart::csr::Csrs, mstatus)) as i32,
        vsstatus: (offset_of!(Hart, csr) + offset_of!(crate::hart::csr::Csrs, vsstatus)) as i32,
        fflags: (offset_of!(Hart, csr) + offset_of!(crate::hart::csr::Csrs, fflags)) as i32,
        frm: (offset_of!(Hart, csr) + offset_of!(crate::hart::csr::Csrs, frm)) as i32,
        last_exit: offset_of!(Hart, last_exit) as i32,
        l1_exec: offset_of!(Hart, l1_exec) as i32,
        fast_table: offset_of!(Hart, fast_table) as i32,
        fast: fast_layout(),
        l1: L1Layout {
            index_bits: tlb::L1_BITS,
            entry_shift: tlb::L1_ENTRY_SHIFT,
            page_shift: 12,
            read: L1Entry::READ_OFFSET as i32,
            write: L1Entry::WRITE_OFFSET as i32,
            exec: L1Entry::EXEC_OFFSET as i32,
            addend: L1Entry::ADDEND_OFFSET as i32,
            tag_mask: [1, 2, 4, 8].map(tlb::l1_tag_mask),
        },
    }
}

/// CSRs compiled code reads inline (each a field of the hart; `Hart::csr_read` is the
/// reference): the trap-entry and interrupt-masking reads of kernels.
const CSR_READS: &[CsrRead] = {
    use crate::hart::csr::{mstatus, num, Csrs};
    use std::mem::offset_of;
    const fn field(num: u16, offset: usize) -> CsrRead {
        CsrRead {
            num,
            offset: (offset_of!(Hart, csr) + offset) as i32,
            mask: u64::MAX,
            sd: false,
        }
    }
    &[
        CsrRead {
            mask: mstatus::S_VIEW & !mstatus::SD,
            sd: true,
            ..field(num::SSTATUS, offset_of!(Csrs, mstatus))
        },
        CsrRead {
            mask: !mstatus::SD,
            sd: true,
            ..field(num::MSTATUS, offset_of!(Csrs, mstatus))
        },
        field(num::STVEC, offset_of!(Csrs, stvec)),
        field(num::SSCRATCH, offset_of!(Csrs, sscratch)),
        field(num::SEPC, offset_of!(Csrs, sepc)),
        field(num::SCAUSE, offset_of!(Csrs, scause)),
        field(num::STVAL, offset_of!(Csrs, stval)),
        field(num::MISA, offset_of!(Csrs, misa)),
        field(num::MEDELEG, offset_of!(Csrs, medeleg)),
        // Not mideleg: its H bits are read-only one on read (`Hart::mideleg`).
        field(num::MIE, offset_of!(Csrs, mie)),
        field(num::MTVEC, offset_of!(Csrs, mtvec)),
        field(num::MSCRATCH, offset_of!(Csrs, mscratch)),
        // Also where compiled cbo.zero finds its enable bits.
        field(num::MENVCFG, offset_of!(Csrs, menvcfg)),
        field(num::SENVCFG, offset_of!(Csrs, senvcfg)),
        field(num::MEPC, offset_of!(Csrs, mepc)),
        field(num::MCAUSE, offset_of!(Csrs, mcause)),
        field(num::MTVAL, offset_of!(Csrs, mtval)),
        CsrRead {
            offset: offset_of!(Hart, hartid) as i32,
            ..field(num::MHARTID, 0)
        },
    ]
};

/// The runtime functions compiled code calls (see `rivet_jit::backend::Helpers`).
pub const HELPERS: Helpers = Helpers {
    load: helper_load,
    store: helper_store,
    amo: helper_amo,
    exec_one: helper_exec_one,
};

/// # Safety
/// `hart` is the pointer compiled code was called with: a live, exclusively used `Hart`.
unsafe fn hart<'a>(hart: *mut u8) -> &'a mut Hart {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *(hart as *mut Hart) }
}

unsafe extern "C" fn helper_load(h: *mut u8, vaddr: u64, kind: u64, pc: u64, n: u64) -> u64 {
    // SAFETY: compiled code passes its hart pointer through.
    let h = unsafe { hart(h) };
    let k = MemKind::unpack(kind);
    match h.refill_l1(vaddr, k.size, Access::Read) {
        Ok(true) => return MEM_HIT,
        Ok(false) => {}
        Err(e) => return trap_at(h, with_tinst(e, k, false, vaddr), pc, n),
    }
    match h.load(vaddr, k.size) {
        Ok(v) => {
            let shift = 64 - 8 * u32::from(k.size);
            let v = if k.signed {
                ((v << shift) as i64 >> shift) as u64
            } else {
                v
            };
            if k.fp {
                // flw/fld: Unpriv spec "NaN Boxing of Narrower Values"; FS is Dirty.
                let v = if k.size == 4 {
                    crate::hart::fp::box_s(v as u32)
                } else {
                    v
                };
                h.f[usize::from(k.rd)] = v;
                h.fs_dirty();
            } else {
                h.set_x(k.rd, v);
            }
            done_at(h, k, pc, n)
        }
        Err(e) => trap_at(h, with_tinst(e, k, false, vaddr), pc, n),
    }
}

/// `e` with the transformed instruction of the load or store `k` at `vaddr` (see
/// [`crate::hart::tinst`]) when it is a data-access exception without one.
#[cold]
fn with_tinst(
    e: crate::hart::trap::Exception,
    k: MemKind,
    store: bool,
    vaddr: u64,
) -> crate::hart::trap::Exception {
    if e.tinst != 0 || !e.is_data_access() {
        return e;
    }
    let access = crate::hart::tinst::DataAccess {
        store,
        size: k.size,
        signed: k.signed,
        fp: k.fp,
        reg: k.rd,
        compressed: k.len == 2,
    };
    let offset = e.tval.wrapping_sub(vaddr) & (u64::from(k.size.max(1)) - 1);
    crate::hart::trap::Exception {
        tinst: access.transformed(offset),
        ..e
    }
}

unsafe extern "C" fn helper_store(
    h: *mut u8,
    vaddr: u64,
    value: u64,
    kind: u64,
    pc: u64,
    n: u64,
) -> u64 {
    // SAFETY: compiled code passes its hart pointer through.
    let h = unsafe { hart(h) };
    let k = MemKind::unpack(kind);
    match h.refill_l1(vaddr, k.size, Access::Write) {
        Ok(true) => return MEM_HIT,
        Ok(false) => {}
        Err(e) => return trap_at(h, with_tinst(e, k, true, vaddr), pc, n),
    }
    match h.store(vaddr, k.size, value) {
        Ok(()) => done_at(h, k, pc, n),
        Err(e) => trap_at(h, with_tinst(e, k, true, vaddr), pc, n),
    }
}

unsafe extern "C" fn helper_amo(
    h: *mut u8,
    vaddr: u64,
    insn: *const Insn,
    kind: u64,
    pc: u64,
    n: u64,
) -> u64 {
    // SAFETY: compiled code passes its hart pointer through.
    let h = unsafe { hart(h) };
    let k = MemKind::unpack(kind);
    // SAFETY: the pointer is into the block the code was compiled from (see
    // `helper_exec_one`).
    let i = unsafe { &*insn };
    // cbo.zero also comes here when the privilege may not use it: it always runs whole.
    if i.op != rivet_jit::frontend::Op::CboZero {
        if let Ok(true) = h.refill_l1(vaddr, k.size, Access::Write) {
            return MEM_HIT;
        }
    }
    // A device, a misaligned address or a fault: the interpreter's semantics raise
    // what the instruction raises.
    h.pc = pc;
    h.instret = n;
    if execute(h, i) {
        MEM_DONE
    } else {
        EXIT_TRAP
    }
}

/// Runs `i` at `h.pc` with the interpreter's semantics: true when it retired (pc and
/// the count past it), false when it took its trap.
fn execute(h: &mut Hart, i: &Insn) -> bool {
    match crate::exec::exec(h, i) {
        Ok(next) => {
            h.pc = next;
            h.instret = h.instret.wrapping_add(1);
            true
        }
        Err(e) => {
            h.raise(e);
            false
        }
    }
}

/// The memory instruction `k` at `pc` retired, after `instret` others.
fn done_at(h: &mut Hart, k: MemKind, pc: u64, instret: u64) -> u64 {
    h.pc = pc.wrapping_add(u64::from(k.len));
    h.instret = instret.wrapping_add(1);
    MEM_DONE
}

/// Takes the trap `e` of the instruction at `pc`, before which `instret`
/// instructions had retired.
#[cold]
fn trap_at(h: &mut Hart, e: crate::hart::trap::Exception, pc: u64, instret: u64) -> u64 {
    h.pc = pc;
    h.instret = instret;
    h.raise(e);
    EXIT_TRAP
}

unsafe extern "C" fn helper_exec_one(h: *mut u8, insn: *const Insn, pc: u64) -> u64 {
    // SAFETY: compiled code passes its hart pointer through.
    let h = unsafe { hart(h) };
    // SAFETY: the pointer is into the block the code was compiled from, which the
    // block cache keeps alive as long as the code is reachable.
    let i = unsafe { &*insn };
    h.pc = pc;
    let before = (h.link_epoch, h.tlb_epoch, h.prv, h.virt);
    let status = if !execute(h, i) {
        EXIT_TRAP
    } else if i.writes_csr()
        && before == (h.link_epoch, h.tlb_epoch, h.prv, h.virt)
        && h.pending_interrupt().is_none()
    {
        // A CSR write ends its block; the block may chain on when the write left
        // translation, privilege and the link epoch (PMP) alone and made no interrupt
        // take (it may have enabled one: Priv spec 3.1.9, interrupts are taken right
        // after the instruction).
        EXIT_CHAIN
    } else {
        EXIT_NEXT
    };
    // Privilege or mstatus may have changed the data regime.
    h.refresh_l1_data();
    status
}

/// How tier 1 compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier1Options {
    pub threshold: u32,
    /// Compile self-looping blocks as loops and chain blocks (off for `--lockstep`,
    /// which needs one call to run a block exactly once).
    pub chaining: bool,
    /// The hart that sends a block waits for its code (deterministic compiles:
    /// `--jit-sync`, `--lockstep`); else it goes on interpreting meanwhile.
    pub sync: bool,
    /// Size of the code cache, shared by the compiler threads; all code is flushed
    /// when one thread's share is three quarters full.
    pub cache_bytes: usize,
    /// Compiler threads.
    pub threads: usize,
}

/// Compiler threads for a host with `cores` cores: one per two cores, at most four
/// (harts need the cores; a Linux boot compiles about ten thousand regions).
pub fn compiler_threads(cores: usize) -> usize {
    (cores / 2).clamp(1, 4)
}

fn new_compiler(o: Tier1Options, thunks: Thunks) -> Result<Compiler, JitError> {
    let share = o.cache_bytes / o.threads.max(1);
    let mut compiler = Compiler::new(layout(), thunks, share).map_err(JitError::Backend)?;
    compiler.loops = o.chaining;
    // A developer's aid for reading the code the JIT emits.
    compiler.dump = std::env::var_os("RIVET_JIT_DUMP").is_some();
    // A developer's aid: the regions of a real run, to replay with
    // `cargo run --release -p rivet-jit --example compile_bench`.
    if let Some(path) = std::env::var_os("RIVET_JIT_RECORD") {
        if let Ok(f) = std::fs::File::create(path) {
            compiler.record = Some(Box::new(std::io::BufWriter::new(f)));
        }
    }
    Ok(compiler)
}

/// One block of a region to compile, by its offset from the region's first pc.
pub struct RegionBlock {
    pub offset: u64,
    pub insns: Arc<[Insn]>,
}

/// A region: a block (first) and blocks of its page it continues at, compiled into
/// one function (see `rivet_jit::backend::Compiler::compile_region`).
pub type Region = Arc<[RegionBlock]>;

/// A region to compile: the head block's, which holds the region and its link cells
/// (the compiled code embeds their addresses, and the members' instructions').
pub struct Request {
    block: Arc<Block>,
    pc: u64,
    generation: u64,
    /// Set when the sender waits for the result.
    reply: Option<Sender<()>>,
}

impl Request {
    /// Compiling the region of `block` (already set), entered at `pc`, for cache
    /// generation `generation`.
    pub fn new(block: Arc<Block>, pc: u64, generation: u64) -> Self {
        Self {
            block,
            pc,
            generation,
            reply: None,
        }
    }
}

/// The machine's compiler service: a trampoline into compiled code, and compiler
/// threads fed by one queue. Each thread has a code module of its own; the code of any
/// of them runs on every hart. A thread installs what it compiled in the block itself.
pub struct Jit {
    entry: Entry,
    jobs: Option<Sender<Request>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub threshold: u32,
    sync: bool,
    /// Requests sent and not finished.
    in_flight: Arc<AtomicU32>,
    stats: Arc<Mutex<JitStats>>,
    /// A thread's code space is three quarters full: the cache should flush.
    full: Arc<AtomicBool>,
    /// The code cache's flush generation (see `super::cache`).
    generation: Arc<AtomicU64>,
}

impl Jit {
    pub fn new(o: Tier1Options) -> Result<Self, JitError> {
        let entry = Entry::new(&layout(), &HELPERS).map_err(JitError::Backend)?;
        let (jobs, rx) = crossbeam::channel::unbounded::<Request>();
        let in_flight = Arc::new(AtomicU32::new(0));
        let stats = Arc::new(Mutex::new(JitStats::default()));
        let full = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for n in 0..o.threads.max(1) {
            let (ready_tx, ready) = crossbeam::channel::bounded(1);
            let thunks = entry.thunks();
            let rx = rx.clone();
            let w = Worker {
                in_flight: in_flight.clone(),
                stats: stats.clone(),
                full: full.clone(),
                generation: generation.clone(),
                share: o.cache_bytes / o.threads.max(1),
            };
            let t = std::thread::Builder::new()
                .name(format!("jit{n}"))
                .spawn(move || {
                    // Cranelift's module is made (and its code freed) on this thread.
                    match new_compiler(o, thunks) {
                        Ok(c) => {
                            let _ = ready_tx.send(Ok(()));
                            w.run(c, rx);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })
                .map_err(JitError::Thread)?;
            threads.push(t);
            match ready.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(JitError::Thread(std::io::Error::other("exited"))),
            }
        }
        Ok(Self {
            entry,
            jobs: Some(jobs),
            threads,
            threshold: o.threshold,
            sync: o.sync,
            in_flight,
            stats,
            full,
            generation,
        })
    }

    /// The flush generation the cache and the compiler threads share.
    pub(super) fn generation(&self) -> Arc<AtomicU64> {
        self.generation.clone()
    }

    /// Sends a region to be compiled; with `sync`, returns once it is (or failed).
    pub fn compile(&self, mut req: Request) {
        let Some(jobs) = &self.jobs else { return };
        let wait = self.sync.then(|| {
            let (tx, rx) = crossbeam::channel::bounded(1);
            req.reply = Some(tx);
            rx
        });
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if jobs.send(req).is_err() {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if let Some(rx) = wait {
            let _ = rx.recv();
        }
    }

    /// The runs after which a block is sent to be compiled now: the threshold while
    /// the compiler threads keep up, doubled for every further eight requests they
    /// have not answered yet, up to eight times. A block sent while the queue is long
    /// waits for its code in the interpreter; blocks that keep running past the raised
    /// threshold are the ones worth the wait. Measured on the reference boot (ten
    /// alternating runs): 16% faster than the fixed threshold, where a fixed 800 was
    /// faster or slower than 200 depending on how much of its core the compiler thread
    /// got.
    #[inline]
    pub fn threshold_now(&self) -> u32 {
        let waiting = self.in_flight.load(Ordering::Relaxed);
        self.threshold << (waiting / 8).min(3)
    }

    /// Whether a compiler thread's code space is nearly full (and clears the flag).
    pub fn take_full(&self) -> bool {
        self.full.swap(false, Ordering::AcqRel)
    }

    /// Where link cells not linked to a block lead (see `rivet_jit::backend`).
    pub fn miss_stub(&self) -> usize {
        self.entry.miss_stub()
    }

    /// What the compiler threads did.
    pub fn stats(&self) -> JitStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs compiled block `f` on `h` (whose pc is the block's start) and the blocks
    /// it chains to, until one returns (see `rivet_jit::backend` on chaining).
    #[inline]
    pub fn run(&self, h: &mut Hart, f: BlockFn) {
        h.refresh_l1_data();
        h.last_exit = 0;
        let (pc, instret) = (h.pc, h.instret);
        // SAFETY: `f` was compiled against `layout()` for the `Hart` type, and the
        // caller holds the cache's slice lock (no flush frees code meanwhile) and found
        // `f` in a block of the current generation; so were the blocks it chains to
        // (link cells of the generation, table entries of the current link epoch). The
        // hart pointer is derived from an exclusive borrow not used during the call;
        // helpers report traps by value, nothing unwinds through compiled code.
        unsafe { self.entry.run(h as *mut Hart as *mut u8, f, pc, instret) };
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        // Closing the queue ends the threads after the region each is compiling.
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What a compiler thread shares with the service.
struct Worker {
    in_flight: Arc<AtomicU32>,
    stats: Arc<Mutex<JitStats>>,
    full: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    share: usize,
}

impl Worker {
    fn run(self, mut compiler: Compiler, rx: Receiver<Request>) {
        // The generation the module's code belongs to.
        let mut mine = self.generation.load(Ordering::Acquire);
        while let Ok(req) = rx.recv() {
            let now = self.generation.load(Ordering::Acquire);
            if req.generation == now {
                if mine != now {
                    // SAFETY: the cache flushed since this module's code was made: no
                    // hart reaches that code any more (it dropped every block and its
                    // own caches before running again).
                    unsafe { compiler.flush() };
                    mine = now;
                }
                self.compile(&mut compiler, &req);
            }
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Some(reply) = req.reply {
                let _ = reply.send(());
            }
        }
    }

    fn compile(&self, compiler: &mut Compiler, req: &Request) {
        let Some(region) = req.block.region.get() else {
            return;
        };
        let t = Instant::now();
        if compiler.code_used() > self.share / 4 * 3 {
            self.full.store(true, Ordering::Release);
            return;
        }
        let links = req.block.links.get().map(|l| &l[..]);
        let members: Vec<Member> = region
            .iter()
            .map(|m| Member {
                pc: req.pc.wrapping_add(m.offset),
                insns: &m.insns,
            })
            .collect();
        let result = compiler.compile_region(&members, links);
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.compile_time += t.elapsed();
        match result {
            Ok(f) => {
                s.blocks += 1;
                s.insns += region.iter().map(|m| m.insns.len() as u64).sum::<u64>();
                // Installed only while its generation lasts (a flush may have come).
                if self.generation.load(Ordering::Acquire) == req.generation {
                    req.block.compiled.store(f.addr(), Ordering::Release);
                }
            }
            Err(e) => {
                if s.failures == 0 {
                    eprintln!(
                        "rivet: {}; such blocks stay interpreted",
                        crate::launch::error_chain(&e)
                    );
                }
                s.failures += 1;
            }
        }
        if compiler.code_used() > self.share / 4 * 3 {
            self.full.store(true, Ordering::Release);
        }
    }
}

/// Entries of the table of compiled blocks (indexed by `pc >> 1`).
pub const FAST_ENTRIES: usize = 65536;

/// One entry of the compact table of compiled blocks: 32 bytes, no pointer chasing.
/// Valid while the L1 fetch entry of `pc` still gives `host` and the hart's
/// `link_epoch` (bumped by fence.i and PMP writes) is `epoch`; a flush empties the
/// table. Compiled code probes it for indirect jumps ([`fast_layout`]).
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct FastEntry {
    pub(super) pc: u64,
    pub(super) host: usize,
    pub(super) epoch: u64,
    pub(super) f: Option<BlockFn>,
}

pub(super) const EMPTY_FAST: FastEntry = FastEntry {
    pc: 1,
    host: 0,
    epoch: rivet_jit::backend::UNLINKED,
    f: None,
};

/// The table of compiled blocks as compiled code sees it.
pub fn fast_layout() -> rivet_jit::backend::FastLayout {
    use std::mem::offset_of;
    const _: () = assert!(std::mem::size_of::<FastEntry>() == 32);
    rivet_jit::backend::FastLayout {
        index_bits: FAST_ENTRIES.trailing_zeros(),
        entry_shift: 5,
        pc: offset_of!(FastEntry, pc) as i32,
        host: offset_of!(FastEntry, host) as i32,
        epoch: offset_of!(FastEntry, epoch) as i32,
        f: offset_of!(FastEntry, f) as i32,
    }
}
