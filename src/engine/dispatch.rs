//! The dispatcher: runs a hart's blocks, interpreted or compiled, taking interrupts
//! at block boundaries. Blocks and their code come from the machine's code cache
//! ([`super::cache`]), shared by every hart; in front of it each hart keeps a jump cache
//! that maps a virtual pc to its block, so the common path neither translates nor
//! hashes, and a compact table of compiled blocks that compiled code probes itself for
//! indirect jumps.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rivet_jit::backend::{BlockFn, LinkCell};
use rivet_jit::frontend::{decode_for, Insn};

use super::blocks::{decode_block, Block};
use super::cache::CodeCache;
use super::stats::DispatchStats;
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

/// A jump-cache entry: valid while the L1 exec entry of `pc` still maps it to `host`
/// (the L1 is what sfence.vma, satp writes and privilege changes already keep exact,
/// so the jump cache needs no flush of its own for them) and, for its block to run
/// unchecked, while the block is current in the code epoch.
#[derive(Clone)]
pub(super) struct JumpEntry {
    pc: u64,
    host: usize,
    block: Arc<Block>,
}

/// One hart's view of the code cache, and its private caches in front of it.
pub struct Interp {
    pub stats: DispatchStats,
    /// The machine's code cache.
    pub(super) cache: Arc<CodeCache>,
    pub(super) jump: Vec<Option<JumpEntry>>,
    /// Blocks by physical address, direct-mapped, in front of the cache's map: a
    /// program run again at new virtual addresses (a new process, ASLR) finds its blocks
    /// here after one probe, without the map's lock.
    pub(super) phys: Vec<Option<Arc<Block>>>,
    /// The cache generation the private caches belong to (a flush empties them), and
    /// the code epoch the hart last took note of.
    pub(super) generation: u64,
    pub(super) epoch: u64,
    /// Print every executed instruction to stderr (`--trace insn`).
    pub trace: bool,
    /// Cross-check compiled blocks against the interpreter (`--lockstep`).
    pub lockstep: bool,
    /// Compiled blocks by virtual pc, probed before the jump cache.
    pub(super) fast: Vec<FastEntry>,
    /// The link cell of the exit the last compiled run left through, and the pc it
    /// left to: linked to the code found there by the next dispatch.
    pub(super) pending_link: Option<(*const LinkCell, u64)>,
}

// SAFETY: the raw pointer is to a link cell of a block the code cache keeps alive for
// the generation (see `pending_link`, dropped whenever the generation or epoch moves);
// an `Interp` is used by one thread at a time, whichever runs its hart.
unsafe impl Send for Interp {}

impl Interp {
    /// A hart's dispatcher over the machine's `cache`.
    pub fn new(cache: Arc<CodeCache>) -> Self {
        Self {
            stats: DispatchStats::default(),
            generation: cache.generation(),
            epoch: cache.epoch(),
            cache,
            jump: vec![None; JUMP_CACHE],
            phys: vec![None; PHYS_CACHE],
            trace: false,
            lockstep: false,
            fast: vec![EMPTY_FAST; JUMP_CACHE],
            pending_link: None,
        }
    }

    /// The machine's code cache.
    pub fn cache(&self) -> &Arc<CodeCache> {
        &self.cache
    }

    /// `fence.i` (Unpriv spec "Zifencei"): later fetches must see earlier stores. Blocks
    /// stay cached, keyed by physical address; each is compared with memory when it is
    /// next looked up, and only blocks whose bytes changed are decoded (and compiled)
    /// again. Linux issues fence.i often (remote fences, module and kprobe patching)
    /// while its code hardly changes.
    pub fn fence_i(&mut self, h: &mut Hart) {
        self.stats.fence_i += 1;
        self.cache.fence_i();
        self.catch_up(h);
    }

    /// Takes note of flushes and code-epoch changes made by any hart: a flush empties
    /// the private caches; a new epoch invalidates the table of compiled blocks (its
    /// entries carry the hart's link epoch) and the pending link.
    #[inline]
    fn catch_up(&mut self, h: &mut Hart) {
        let generation = self.cache.generation();
        if generation != self.generation {
            self.generation = generation;
            self.jump.fill(None);
            self.phys.fill(None);
            self.fast.fill(EMPTY_FAST);
            self.epoch = 0;
        }
        let epoch = self.cache.epoch();
        if epoch != self.epoch {
            self.epoch = epoch;
            h.link_epoch += 1;
            self.pending_link = None;
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
    pub(super) fn block(&mut self, h: &mut Hart) -> Result<Arc<Block>, Exception> {
        let pc = h.pc;
        let slot = ((pc >> 1) as usize) & (JUMP_CACHE - 1);
        let host = h.fetch_host(pc);
        let epoch = self.cache.epoch();
        if let (Some(e), Some(host)) = (&self.jump[slot], host) {
            if e.pc == pc && e.host == host as usize {
                let b = &e.block;
                // SAFETY: `host` maps the page holding the whole block (blocks never
                // cross a page) in guest RAM, which lives as long as the hart.
                if b.current(epoch) || unsafe { b.matches_host(host) } {
                    b.verified(epoch);
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
            (Some(e), _) if e.pc == pc && e.block.paddr == paddr => Some(e.block.clone()),
            (_, Some(b)) if b.paddr == paddr => Some(b.clone()),
            _ => self.cache.lookup(paddr),
        };
        let cached = match cached {
            Some(b) if !b.current(epoch) => {
                if b.still_in_memory(h, paddr) {
                    b.verified(epoch);
                    Some(b)
                } else {
                    self.cache.remove(&b);
                    self.phys[phys] = None;
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
                let b = decode_block(h, pc, paddr, epoch)?;
                if b.insns.is_empty() {
                    Arc::new(b)
                } else {
                    self.cache.insert(b)
                }
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
                block: block.clone(),
            });
        }
        Ok(block)
    }

    /// Runs up to `budget` blocks, stopping early when the hart waits (WFI) or the
    /// machine stops. Interrupts are taken at block boundaries.
    pub fn run(&mut self, h: &mut Hart, budget: u32) {
        let cache = self.cache.clone();
        {
            // No flush frees code while this hart runs.
            let _running = cache.begin_slice();
            self.run_slice(h, budget);
        }
        if let Some(jit) = &cache.jit {
            if jit.take_full() {
                cache.code_full();
            }
        }
        cache.flush_if_due();
    }

    fn run_slice(&mut self, h: &mut Hart, budget: u32) {
        self.catch_up(h);
        h.fast_table = self.fast.as_ptr() as usize;
        // The block interpreted last when it ran to its end, and the pc it ran at.
        let mut prev: Option<(Arc<Block>, u64)> = None;
        for _ in 0..budget {
            if h.signals.chain_key().load(Ordering::Relaxed) != h.link_epoch {
                // Another thread asked for the hart (an interrupt line, a timer
                // deadline, a stop, a flush), or the link epoch moved: let compiled code
                // chain again, then look at what changed.
                if self.cache.flush_due() {
                    return;
                }
                self.catch_up(h);
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
                let epoch = self.epoch;
                lock_next(a)[*k].upgrade().filter(|b| b.current(epoch))
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
                lock_next(a)[*k] = Arc::downgrade(&block);
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

    /// Runs compiled code and the blocks it chains to.
    #[inline]
    pub(super) fn run_compiled(&mut self, h: &mut Hart, f: BlockFn) {
        let Some(jit) = &self.cache.jit else {
            return;
        };
        self.stats.compiled_runs += 1;
        jit.run(h, f);
        if h.last_exit != 0 {
            self.pending_link = Some((h.last_exit as *const LinkCell, h.pc));
        }
    }

    /// Links the exit `link` (from the dispatch before) to `f` when it led to `h.pc`,
    /// where `f` was just found valid for the hart's code epoch.
    #[inline]
    pub(super) fn link_exit(&mut self, link: Option<(*const LinkCell, u64)>, h: &Hart, f: BlockFn) {
        if let Some((cell, pc)) = link {
            if pc == h.pc {
                // SAFETY: the pending link is dropped whenever the generation or the
                // epoch moves, so the cell's block is one of this generation.
                unsafe { self.cache.link(cell, f, self.epoch) };
            }
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

/// A block's successor slots.
fn lock_next(b: &Block) -> std::sync::MutexGuard<'_, [std::sync::Weak<Block>; 2]> {
    b.next_blocks.lock().unwrap_or_else(|e| e.into_inner())
}
