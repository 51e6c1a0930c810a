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

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

use rivet_jit::backend::{
    self, BlockFn, Compiler, CsrRead, Entry, Helpers, L1Layout, LinkCell, MemKind, Member,
    StateLayout, Thunks, EXIT_CHAIN, EXIT_NEXT, EXIT_TRAP, MEM_DONE, MEM_HIT,
};
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

/// What tier 1 did, for `--stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JitStats {
    pub blocks: u64,
    pub insns: u64,
    pub compile_time: Duration,
    pub failures: u64,
    pub flushes: u64,
    /// Compiled code entered from the dispatcher.
    pub runs: u64,
    /// `--lockstep`: blocks compared against the interpreter, and blocks run unchecked
    /// (they store to memory or read the host clock).
    pub checked: u64,
    pub unchecked: u64,
    /// How the interpreter's dispatch found the blocks it ran.
    pub dispatch: super::stats::DispatchStats,
}

impl JitStats {
    pub fn add(&mut self, o: &JitStats) {
        self.blocks += o.blocks;
        self.insns += o.insns;
        self.compile_time += o.compile_time;
        self.failures += o.failures;
        self.flushes += o.flushes;
        self.runs += o.runs;
        self.checked += o.checked;
        self.unchecked += o.unchecked;
        self.dispatch.add(&o.dispatch);
    }
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
    /// Compile on a thread of its own while the hart goes on interpreting (else on the
    /// hart's thread, the moment a block turns hot: deterministic).
    pub background: bool,
    /// Size of the code cache; all code is flushed when it is three quarters full.
    pub cache_bytes: usize,
}

fn new_compiler(o: Tier1Options, thunks: Thunks) -> Result<Compiler, JitError> {
    let mut compiler = Compiler::new(layout(), thunks, o.cache_bytes).map_err(JitError::Backend)?;
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

/// A region to compile. The compiled code embeds the addresses of the members'
/// instructions (kept alive by the region's first block, as the `Arc` here keeps them
/// while compiling) and of the link cells.
pub struct Request {
    pub region: Region,
    pub pc: u64,
    pub paddr: u64,
    /// The link cells' address and number.
    links: Option<(usize, usize)>,
    generation: u64,
}

/// A compiled region, back from the compiler thread.
pub struct Compiled {
    /// The first block's physical address, and the region (identity: the same `Arc`).
    pub paddr: u64,
    pub region: Region,
    pub f: BlockFn,
}

/// Compiles one request, unless the code cache is past three quarters of
/// `cache_bytes` (the engine flushes it at the next slice boundary).
fn compile_request(compiler: &mut Compiler, req: Request, cache_bytes: usize) -> Done {
    let t = Instant::now();
    let f = if compiler.code_used() > cache_bytes / 4 * 3 {
        Err(None)
    } else {
        // SAFETY: the links address and length are those of the block's link cells,
        // alive as long as the code can run (see Request).
        let links = req
            .links
            .map(|(a, n)| unsafe { std::slice::from_raw_parts(a as *const LinkCell, n) });
        let members: Vec<Member> = req
            .region
            .iter()
            .map(|m| Member {
                pc: req.pc.wrapping_add(m.offset),
                insns: &m.insns,
            })
            .collect();
        compiler
            .compile_region(&members, links)
            .map(BlockFn::addr)
            .map_err(|e| Some(crate::launch::error_chain(&e)))
    };
    Done {
        req,
        f,
        time: t.elapsed(),
        code_used: compiler.code_used(),
    }
}

enum Job {
    Compile(Request),
    /// Free all code: the hart no longer reaches any of it.
    Flush,
}

struct Done {
    req: Request,
    /// The code's address; an error, or `None` when the block was not compiled
    /// because the code cache is nearly full (a flush is due).
    f: Result<usize, Option<String>>,
    time: Duration,
    /// Bytes of the code cache in use after this block.
    code_used: usize,
}

/// The compiler thread of one hart.
struct Worker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(o: Tier1Options, thunks: Thunks, name: String) -> Result<Self, JitError> {
        let (jobs, job_rx) = crossbeam::channel::unbounded::<Job>();
        let (done_tx, done) = crossbeam::channel::unbounded::<Done>();
        let (ready_tx, ready) = crossbeam::channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // Cranelift's module is made (and its code freed) on this thread.
                let mut compiler = match new_compiler(o, thunks) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut pending: std::collections::VecDeque<Request> = Default::default();
                loop {
                    use crossbeam::channel::TryRecvError;
                    let next = if pending.is_empty() {
                        job_rx.recv().map_err(|_| TryRecvError::Disconnected)
                    } else {
                        job_rx.try_recv()
                    };
                    match next {
                        Ok(Job::Compile(req)) => pending.push_back(req),
                        Ok(Job::Flush) => {
                            // Requests from before the flush are for dropped blocks.
                            pending.clear();
                            // SAFETY: the hart dropped every block (and so every way to
                            // reach compiled code) before sending the flush.
                            unsafe { compiler.flush() };
                        }
                        // The hart is gone: so is the use of what is queued.
                        Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Empty) => {
                            // Oldest first: measured against newest first, this
                            // boots 5% slower and runs fork/exec 13% faster.
                            let req = pending.pop_front();
                            let Some(req) = req else { continue };
                            let done = compile_request(&mut compiler, req, o.cache_bytes);
                            if done_tx.send(done).is_err() {
                                return;
                            }
                        }
                    }
                }
            })
            .map_err(JitError::Thread)?;
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(JitError::Thread(std::io::Error::other("exited"))),
        }
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the block it is compiling.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Backend {
    Inline(Box<Compiler>),
    Thread(Worker),
}

/// One hart's compiler and code.
pub struct Tier1 {
    backend: Backend,
    entry: Entry,
    chaining: bool,
    pub threshold: u32,
    pub stats: JitStats,
    /// Bumped by every flush: results of older requests are dropped.
    generation: u64,
    /// The code cache is nearly full: the engine should flush all code.
    pub code_full: bool,
    cache_bytes: usize,
    /// Requests sent to the compiler thread and not answered yet.
    in_flight: u32,
}

impl Tier1 {
    pub fn new(o: Tier1Options, hartid: u64) -> Result<Self, JitError> {
        let entry = Entry::new(&layout(), &HELPERS).map_err(JitError::Backend)?;
        let backend = if o.background {
            Backend::Thread(Worker::spawn(o, entry.thunks(), format!("jit{hartid}"))?)
        } else {
            Backend::Inline(Box::new(new_compiler(o, entry.thunks())?))
        };
        Ok(Self {
            backend,
            entry,
            chaining: o.chaining,
            threshold: o.threshold,
            stats: JitStats::default(),
            generation: 0,
            code_full: false,
            cache_bytes: o.cache_bytes,
            in_flight: 0,
        })
    }

    /// Asks for a block to be compiled. Compiled on the spot when tier 1 compiles
    /// inline; else the result comes from [`Tier1::take_compiled`] later. `None` when
    /// there is no code (yet).
    pub fn compile(&mut self, req: Request) -> Option<BlockFn> {
        match &mut self.backend {
            Backend::Inline(c) => {
                let done = compile_request(c, req, self.cache_bytes);
                self.finish(done).map(|c| c.f)
            }
            Backend::Thread(w) => {
                let jobs = w.jobs.as_ref()?;
                if jobs.send(Job::Compile(req)).is_ok() {
                    self.in_flight += 1;
                }
                None
            }
        }
    }

    /// The request for compiling `region` at `pc` (physical `paddr`) with `links`.
    pub fn request(&self, region: &Region, pc: u64, paddr: u64, links: &[LinkCell]) -> Request {
        Request {
            region: region.clone(),
            pc,
            paddr,
            links: self
                .chaining
                .then_some((links.as_ptr() as usize, links.len())),
            generation: self.generation,
        }
    }

    /// The runs after which a block is sent to be compiled now: the threshold while
    /// the compiler thread keeps up, doubled for every further eight requests it has
    /// not answered yet, up to eight times. A block sent while the queue is long waits
    /// for its code in the interpreter; blocks that keep running past the raised
    /// threshold are the ones worth the wait. Measured on the reference boot (ten
    /// alternating runs): 16% faster than the fixed threshold, where a fixed 800 was
    /// faster or slower than 200 depending on how much of its core the compiler thread
    /// got.
    #[inline]
    pub fn threshold_now(&self) -> u32 {
        self.threshold << (self.in_flight / 8).min(3)
    }

    /// Where link cells not linked to a block lead (see `rivet_jit::backend`).
    pub fn miss_stub(&self) -> usize {
        self.entry.miss_stub()
    }

    /// A block the compiler thread finished, if any.
    pub fn take_compiled(&mut self) -> Option<Compiled> {
        loop {
            let Backend::Thread(w) = &self.backend else {
                return None;
            };
            let done = w.done.try_recv().ok()?;
            self.in_flight = self.in_flight.saturating_sub(1);
            if let Some(c) = self.finish(done) {
                return Some(c);
            }
        }
    }

    fn finish(&mut self, d: Done) -> Option<Compiled> {
        self.stats.compile_time += d.time;
        // Past three quarters: flush at the next slice boundary, before it is full.
        if d.req.generation == self.generation && d.code_used > self.cache_bytes / 4 * 3 {
            self.code_full = true;
        }
        match d.f {
            Ok(f) if d.req.generation == self.generation => {
                self.stats.blocks += 1;
                self.stats.insns += d
                    .req
                    .region
                    .iter()
                    .map(|m| m.insns.len() as u64)
                    .sum::<u64>();
                // SAFETY: the compiler returned a block's address, of a module not
                // flushed since (same generation).
                let f = unsafe { BlockFn::from_addr(f) }?;
                Some(Compiled {
                    paddr: d.req.paddr,
                    region: d.req.region,
                    f,
                })
            }
            Ok(_) => None,
            Err(None) => None,
            Err(Some(e)) => {
                if self.stats.failures == 0 {
                    eprintln!("rivet: {e}; such blocks stay interpreted");
                }
                self.stats.failures += 1;
                None
            }
        }
    }

    /// Runs compiled block `f` on `h` (whose pc is the block's start) and the blocks
    /// it chains to, until one returns (see `rivet_jit::backend` on chaining).
    #[inline]
    pub fn run(&mut self, h: &mut Hart, f: BlockFn) {
        self.stats.runs += 1;
        h.refresh_l1_data();
        h.last_exit = 0;
        let (pc, instret) = (h.pc, h.instret);
        // SAFETY: `f` was compiled by this tier's compiler against `layout()` for the
        // `Hart` type and has not been flushed (the caller found it in the live block
        // cache); so were the blocks it chains to (link cells and table entries of the
        // current link epoch). The hart pointer is derived from an exclusive borrow not
        // used during the call; helpers report traps by value, nothing unwinds through
        // compiled code.
        unsafe { self.entry.run(h as *mut Hart as *mut u8, f, pc, instret) };
    }

    /// Frees all compiled code.
    ///
    /// # Safety
    /// No function this tier compiled may be called afterwards.
    pub unsafe fn flush(&mut self) {
        self.stats.flushes += 1;
        self.generation += 1;
        self.code_full = false;
        // The compiler thread drops what is queued.
        self.in_flight = 0;
        match &mut self.backend {
            // SAFETY: guaranteed by the caller.
            Backend::Inline(c) => unsafe { c.flush() },
            Backend::Thread(w) => {
                if let Some(jobs) = &w.jobs {
                    let _ = jobs.send(Job::Flush);
                }
            }
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
