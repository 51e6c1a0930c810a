//! The dispatcher: runs a hart's blocks, interpreted or compiled, taking interrupts
//! at block boundaries. A jump cache maps a virtual pc to its block so the common path
//! neither translates nor hashes; compiled blocks are also found through a compact
//! table that compiled code probes itself for indirect jumps. Caches are per hart: a
//! hart only has to see code another agent wrote after its own `fence.i` (Unpriv spec
//! "Zifencei").

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rivet_jit::backend::{BlockFn, LinkCell};
use rivet_jit::frontend::{decode_for, Insn};

use super::blocks::{decode_block, Block, PageHasher};
use super::stats::DispatchStats;
use super::tier1::Tier1;
pub(super) use super::tier1::{FastEntry, EMPTY_FAST};
use crate::exec::{exec, interpret};
use crate::hart::trap::Exception;
use crate::hart::Hart;

/// Entries of the jump cache and of the table of compiled blocks, both indexed by
/// `pc >> 1`. At 4096 entries (8 KiB of code per round of the index) fork/exec's
/// kernel paths evicted each other: two thirds of the table's misses were another
/// pc in the slot; at 65536 a tenth are, and fork/exec ran 6% faster.
pub(super) const JUMP_CACHE: usize = super::tier1::FAST_ENTRIES;
const PHYS_CACHE: usize = 16384;

/// A jump-cache entry: valid while its generation is current and the L1 exec entry of
/// `pc` still maps it to `host` (the L1 is what sfence.vma, satp writes and privilege
/// changes already keep exact, so the jump cache needs no flush of its own for them).
#[derive(Clone)]
pub(super) struct JumpEntry {
    pc: u64,
    host: usize,
    generation: u64,
    block: Rc<Block>,
}

/// Per-hart decoded-code caches.
pub struct Interp {
    pub stats: DispatchStats,
    pub(super) jump: Vec<Option<JumpEntry>>,
    pub(super) blocks: HashMap<u64, Rc<Block>, BuildHasherDefault<PageHasher>>,
    /// Blocks by physical address, direct-mapped, in front of `blocks`: a program run
    /// again at new virtual addresses (a new process, ASLR) finds its blocks here after
    /// one probe where the map takes several cache misses.
    pub(super) phys: Vec<Option<Rc<Block>>>,
    /// Bumped to invalidate every jump-cache entry at once.
    pub(super) generation: u64,
    /// Print every executed instruction to stderr (`--trace insn`).
    pub trace: bool,
    /// The compiler tier; `None` runs everything interpreted.
    pub tier1: Option<Tier1>,
    /// Cross-check compiled blocks against the interpreter (`--lockstep`).
    pub lockstep: bool,
    /// Compiled blocks by virtual pc, probed before the jump cache.
    pub(super) fast: Vec<FastEntry>,
    /// Bumped by `fence.i`: blocks of an older epoch are compared with memory before
    /// they run again.
    pub(super) code_epoch: u64,
    /// Compiled blocks whose code changed; their host code stays allocated until the
    /// next full flush.
    pub(super) dead_compiled: usize,
    /// The link cell of the exit the last compiled run left through, and the pc it
    /// left to: linked to the code found there by the next dispatch.
    pub(super) pending_link: Option<(*const LinkCell, u64)>,
    /// Every cell linked to a block since cells were last unlinked, and the link epoch
    /// they were linked in: when the hart's epoch moves on (code or PMP may have
    /// changed), they are pointed back at the miss stub. A cell's block stays in the
    /// block map at least until then: blocks leave it only when a re-verification after
    /// `fence.i` fails, which comes after the unlinking, or in a flush, which forgets
    /// the list.
    pub(super) linked: Vec<*const LinkCell>,
    pub(super) linked_epoch: u64,
}

/// Changed compiled blocks tolerated before all compiled code is freed at once.
const MAX_DEAD_COMPILED: usize = 4096;

impl Default for Interp {
    fn default() -> Self {
        Self::new()
    }
}

impl Interp {
    pub fn new() -> Self {
        Self {
            stats: DispatchStats::default(),
            jump: vec![None; JUMP_CACHE],
            blocks: HashMap::default(),
            phys: vec![None; PHYS_CACHE],
            generation: 0,
            trace: false,
            tier1: None,
            lockstep: false,
            fast: vec![EMPTY_FAST; JUMP_CACHE],
            code_epoch: 0,
            dead_compiled: 0,
            pending_link: None,
            linked: Vec::new(),
            linked_epoch: 0,
        }
    }

    /// `fence.i` (Unpriv spec "Zifencei"): later fetches must see earlier stores. Blocks
    /// stay cached, keyed by physical address; each is compared with memory when it is
    /// next looked up, and only blocks whose bytes changed are decoded (and compiled)
    /// again. Linux issues fence.i often (remote fences, module and kprobe patching)
    /// while its code hardly changes.
    pub fn fence_i(&mut self, h: &mut Hart) {
        self.stats.fence_i += 1;
        self.code_epoch += 1;
        // Chained exits would skip the check: unlink them all.
        h.link_epoch += 1;
        self.pending_link = None;
        if self.dead_compiled > MAX_DEAD_COMPILED {
            self.flush_code();
        }
    }

    /// Drops every decoded block and frees all compiled code. Must not run while
    /// compiled code runs (it runs between blocks).
    pub fn flush_code(&mut self) {
        self.pending_link = None;
        // The cells go with their blocks.
        self.linked.clear();
        self.dead_compiled = 0;
        self.blocks.clear();
        self.phys.fill(None);
        self.jump.fill(None);
        self.fast.fill(EMPTY_FAST);
        self.generation += 1;
        if let Some(t1) = &mut self.tier1 {
            // SAFETY: the block map and the jump cache were the only holders of blocks
            // (and so of compiled functions); both are empty, and no compiled code is
            // running (flushes happen between blocks).
            unsafe { t1.flush() };
        }
    }

    /// The compiled code for `h.pc` when the compact table of compiled blocks has it
    /// (filled when a compiled block runs; it follows the jump cache's validity rules
    /// through the same generation).
    #[inline]
    pub(super) fn compiled_at(&mut self, h: &Hart) -> Option<BlockFn> {
        let pc = h.pc;
        let e = &self.fast[((pc >> 1) as usize) & (JUMP_CACHE - 1)];
        if e.pc == pc
            && e.epoch == h.link_epoch
            && h.fetch_host(pc).map(|p| p as usize) == Some(e.host)
        {
            e.f
        } else {
            None
        }
    }

    /// Finds or decodes the block at `h.pc`.
    pub(super) fn block(&mut self, h: &mut Hart) -> Result<Rc<Block>, Exception> {
        let pc = h.pc;
        let slot = ((pc >> 1) as usize) & (JUMP_CACHE - 1);
        let host = h.fetch_host(pc);
        if let (Some(e), Some(host)) = (&self.jump[slot], host) {
            if e.pc == pc && e.host == host as usize && e.generation == self.generation {
                let b = &e.block;
                // SAFETY: `host` maps the page holding the whole block (blocks never
                // cross a page) in guest RAM, which lives as long as the hart.
                if b.epoch.get() == self.code_epoch || unsafe { b.matches_host(host) } {
                    b.epoch.set(self.code_epoch);
                    self.stats.jump += 1;
                    return Ok(b.clone());
                }
            }
        }
        let paddr = h.translate_fetch(pc)?;
        // After a TLB flush the jump cache's host check fails; the entry may still
        // name the block at this physical address.
        let phys = ((paddr >> 1) as usize) & (PHYS_CACHE - 1);
        let cached = match (&self.jump[slot], &self.phys[phys]) {
            (Some(e), _)
                if e.pc == pc && e.block.paddr == paddr && e.generation == self.generation =>
            {
                Some(e.block.clone())
            }
            (_, Some(b)) if b.paddr == paddr => Some(b.clone()),
            _ => self.blocks.get(&paddr).cloned(),
        };
        let cached = match cached {
            Some(b) if b.epoch.get() != self.code_epoch => {
                if b.still_in_memory(h, paddr) {
                    b.epoch.set(self.code_epoch);
                    Some(b)
                } else {
                    self.blocks.remove(&paddr);
                    self.phys[phys] = None;
                    if b.compiled.get().is_some() {
                        self.dead_compiled += 1;
                    }
                    None
                }
            }
            other => other,
        };
        let block = match cached {
            Some(b) => {
                self.stats.map += 1;
                b
            }
            None => {
                self.stats.decoded += 1;
                let b = Rc::new(decode_block(h, pc, paddr, self.code_epoch)?);
                if !b.insns.is_empty() {
                    self.blocks.insert(paddr, b.clone());
                }
                b
            }
        };
        if !block.insns.is_empty() {
            self.phys[phys] = Some(block.clone());
        }
        // The translation above filled the L1 exec entry when the page is cacheable.
        if let Some(host) = h.fetch_host(pc) {
            self.jump[slot] = Some(JumpEntry {
                pc,
                host: host as usize,
                generation: self.generation,
                block: block.clone(),
            });
        }
        Ok(block)
    }

    /// Runs up to `budget` blocks, stopping early when the hart waits (WFI) or the
    /// machine stops. Interrupts are taken at block boundaries.
    pub fn run(&mut self, h: &mut Hart, budget: u32) {
        self.install_compiled();
        h.fast_table = self.fast.as_ptr() as usize;
        // The block interpreted last when it ran to its end, and the pc it ran at.
        let mut prev: Option<(Rc<Block>, u64)> = None;
        for _ in 0..budget {
            if h.signals.chain_key().load(Ordering::Relaxed) != h.link_epoch {
                // Another thread asked for the hart (an interrupt line, a timer
                // deadline, a stop), or the link epoch moved: let compiled code chain
                // again, then look at what changed.
                if h.link_epoch != self.linked_epoch {
                    self.unlink_all();
                    self.linked_epoch = h.link_epoch;
                }
                h.signals.arm(h.link_epoch);
                h.update_timers();
            }
            let mut link = self.pending_link.take();
            if let Some(mut irq) = h.pending_interrupt() {
                link = None;
                if irq == 7 || irq == 5 {
                    // Timer state is sampled at slice boundaries; the handler may have
                    // moved the comparator since, so confirm before taking it.
                    h.update_timers();
                }
                if let Some(i) = h.pending_interrupt() {
                    irq = i;
                    h.waiting = false;
                    h.interrupt(irq);
                    prev = None;
                }
            }
            if h.waiting || !h.shared.power.is_running() {
                return;
            }
            // After an interpreted block, the next one is usually its successor: no
            // lookup. A fixed successor in the same virtual page is in the same
            // physical page (the block ended in a branch or jump, which changes neither
            // translation nor privilege).
            let slot = prev.as_ref().and_then(|(a, pc)| {
                let k = a.successor_slot(*pc, h.pc)?;
                Some((a.clone(), k))
            });
            prev = None;
            let cached = slot.as_ref().and_then(|(a, k)| {
                a.next_blocks.borrow()[*k]
                    .upgrade()
                    .filter(|b| b.epoch.get() == self.code_epoch)
            });
            if let Some(block) = cached {
                self.stats.next += 1;
                let pc = h.pc;
                prev = self.run_block(h, &block, link).then_some((block, pc));
                if self.take_fence_i(h) {
                    prev = None;
                }
                continue;
            }
            if let Some(f) = self.compiled_at(h) {
                // The common case once code is hot: no block lookup, no refcounts.
                self.stats.fast += 1;
                self.link_exit(link, h, f);
                self.run_compiled(h, f);
                self.take_fence_i(h);
                continue;
            }
            let pc = h.pc;
            let block = match self.block(h) {
                Ok(b) => b,
                Err(e) => {
                    h.raise(e);
                    continue;
                }
            };
            if let Some((a, k)) = &slot {
                a.next_blocks.borrow_mut()[*k] = Rc::downgrade(&block);
            }
            if block.insns.is_empty() {
                // An instruction that straddles a page boundary: run it alone.
                match h.fetch_insn(h.pc).and_then(|raw| {
                    let insn = decode_for(raw, h.exts);
                    exec(h, &insn)
                }) {
                    Ok(next) => {
                        h.pc = next;
                        h.instret = h.instret.wrapping_add(1);
                        self.stats.interpreted += 1;
                    }
                    Err(e) => h.raise(e),
                }
            } else if self.run_block(h, &block, link) {
                prev = Some((block, pc));
            }
            if self.take_fence_i(h) {
                prev = None;
            }
        }
    }

    /// Carries out a `fence.i` the block just run executed; whether there was one.
    #[inline]
    pub(super) fn take_fence_i(&mut self, h: &mut Hart) -> bool {
        let pending = std::mem::take(&mut h.code_flush_pending);
        if pending {
            self.fence_i(h);
        }
        pending
    }

    /// Gives the blocks the compiler thread finished their code.
    pub(super) fn install_compiled(&mut self) {
        let Some(t1) = &mut self.tier1 else {
            return;
        };
        while let Some(c) = t1.take_compiled() {
            // The block may have changed (fence.i) or gone (flush) meanwhile.
            if let Some(b) = self.blocks.get(&c.paddr) {
                if b.region.get().is_some_and(|r| Arc::ptr_eq(r, &c.region)) {
                    b.compiled.set(Some(c.f));
                }
            }
        }
        if t1.code_full {
            // Between blocks: no compiled code runs.
            self.flush_code();
        }
    }

    /// Runs compiled code and the blocks it chains to.
    #[inline]
    pub(super) fn run_compiled(&mut self, h: &mut Hart, f: BlockFn) {
        let Some(t1) = &mut self.tier1 else {
            return;
        };
        t1.run(h, f);
        if h.last_exit != 0 {
            self.pending_link = Some((h.last_exit as *const LinkCell, h.pc));
        }
    }

    /// Links the exit `link` (from the dispatch before) to `f` when it led to `h.pc`,
    /// where `f` was just found valid for the current code epoch.
    #[inline]
    pub(super) fn link_exit(&mut self, link: Option<(*const LinkCell, u64)>, h: &Hart, f: BlockFn) {
        if let Some((cell, pc)) = link {
            if pc == h.pc {
                // SAFETY: the cell belongs to a block of the block map (only a
                // `fence.i` or a flush removes blocks, and both drop the pending link),
                // and this thread is its only user.
                unsafe { (*cell).link(f) };
                self.linked.push(cell);
            }
        }
    }

    /// Points every linked cell back at the miss stub.
    pub(super) fn unlink_all(&mut self) {
        let Some(t1) = &self.tier1 else {
            return;
        };
        let miss = t1.miss_stub();
        for cell in self.linked.drain(..) {
            // SAFETY: see `linked`: the cell's block is alive; this thread is the only
            // user of cells, and no compiled code runs.
            unsafe { (*cell).unlink(miss) };
        }
    }

    /// Interprets `insns` at `h.pc`, counting what retired (`--stats`); returns
    /// whether all of them did (no trap).
    pub(super) fn interpret(&mut self, h: &mut Hart, insns: &[Insn]) -> bool {
        let before = h.instret;
        interpret(h, insns, self.trace);
        let ran = h.instret.wrapping_sub(before);
        self.stats.interpreted += ran;
        ran == insns.len() as u64
    }
}
