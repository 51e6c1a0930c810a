//! The machine's code cache, shared by every hart: decoded blocks by physical address,
//! their compiled code, the chaining links between them, and the epochs that keep them
//! current. A block is decoded and compiled once and runs on every hart (compiled code
//! takes the hart and its run-time pc as arguments and embeds no per-hart pointer).
//!
//! Staying current with guest code (Unpriv spec "Zifencei"):
//! - The *code epoch* moves on every `fence.i` of any hart (and when blocks are found
//!   changed). A block records the epoch its bytes were last compared with memory in;
//!   a hart compares a block of an older epoch with memory again before running it.
//!   Every chaining link is undone when the epoch moves, and a link is made only while
//!   its target was verified in the current epoch, so a hart that executed `fence.i`
//!   never follows a chain into code it has not verified since.
//! - A hart that did not execute `fence.i` may run code verified in an earlier epoch
//!   until it next looks at the epoch (at its next slice), which the ISA allows: only a
//!   hart's own `fence.i` orders its fetches after stores.
//!
//! Lifetime of code: compiled code of a block that changed stays allocated (other harts
//! may still be running it) until the next flush, which frees all code at once while no
//! hart runs: harts hold [`CodeCache::begin_slice`] while they run, a flush takes the
//! other side of that lock. Budgets: decoded instructions ([`BLOCK_BUDGET`] by
//! default), changed compiled blocks kept for their code ([`MAX_RETIRED`]) and the code
//! space of the compiler threads; reaching any of them flushes everything, as QEMU does
//! when its code buffer fills.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use rivet_devices::irq::HartSignals;
use rivet_jit::backend::{BlockFn, LinkCell};

use super::blocks::{Block, PageHasher};
use super::tier1::Jit;

/// Decoded instructions the cache holds before it is flushed: about 100 MiB of blocks
/// at the most (16 bytes an instruction, some 200 bytes of bookkeeping a block of six
/// on average). A Linux boot holds about a fifth of this, the nested guest half.
pub const BLOCK_BUDGET: usize = 2 << 20;
/// Compiled blocks found changed whose code is kept (it may still run on another hart)
/// before everything is flushed.
pub const MAX_RETIRED: usize = 4096;

/// Why the cache was flushed, for `--stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlushStats {
    /// The compiler threads' code space was three quarters full.
    pub code_full: u64,
    /// The decoded-block budget was reached.
    pub block_budget: u64,
    /// Too many changed compiled blocks were kept.
    pub retired: u64,
}

/// A linked cell, owned by a block of the map (or by a retired block).
struct CellPtr(*const LinkCell);

// SAFETY: the cell is an atomic word inside a block the cache keeps alive (in the map
// or among the retired blocks) until the list is cleared.
unsafe impl Send for CellPtr {}

#[derive(Default)]
struct Flush {
    code_full: AtomicBool,
    block_budget: AtomicBool,
    retired: AtomicBool,
}

pub struct CodeCache {
    blocks: RwLock<HashMap<u64, Arc<Block>, BuildHasherDefault<PageHasher>>>,
    /// Instructions of the blocks in the map.
    insns: AtomicUsize,
    budget: usize,
    epoch: AtomicU64,
    /// Bumped by every flush; shared with the compiler threads, which drop work of an
    /// older generation.
    generation: Arc<AtomicU64>,
    /// Every linked cell.
    links: Mutex<Vec<CellPtr>>,
    /// Compiled blocks no longer in the map whose code may still run.
    retired: Mutex<Vec<Arc<Block>>>,
    /// Held (shared) by harts while they run a slice; a flush holds it exclusively.
    run: RwLock<()>,
    wanted: Flush,
    flushes: Mutex<FlushStats>,
    /// The compiler service (tier 1), when blocks are compiled.
    pub jit: Option<Jit>,
    /// Every hart, to ask them back from compiled code before a flush.
    harts: Vec<Arc<HartSignals>>,
}

impl CodeCache {
    /// A cache for the harts of `harts`, compiling with `jit` (if any), holding at most
    /// `budget` decoded instructions.
    pub fn new(jit: Option<Jit>, harts: Vec<Arc<HartSignals>>, budget: usize) -> Arc<Self> {
        let generation = jit
            .as_ref()
            .map_or_else(|| Arc::new(AtomicU64::new(0)), |j| j.generation());
        Arc::new(Self {
            blocks: RwLock::default(),
            insns: AtomicUsize::new(0),
            budget: budget.max(1),
            epoch: AtomicU64::new(1),
            generation,
            links: Mutex::default(),
            retired: Mutex::default(),
            run: RwLock::new(()),
            wanted: Flush::default(),
            flushes: Mutex::default(),
            jit,
            harts,
        })
    }

    /// The current code epoch.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The current flush generation.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Decoded instructions held now.
    pub fn insns(&self) -> usize {
        self.insns.load(Ordering::Relaxed)
    }

    pub fn flush_stats(&self) -> FlushStats {
        *lock(&self.flushes)
    }

    /// The block decoded from physical address `paddr`, if any.
    pub fn lookup(&self, paddr: u64) -> Option<Arc<Block>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&paddr)
            .cloned()
    }

    /// Adds a block just decoded, in place of any block at its address that changed;
    /// if another hart added the same block meanwhile, that one is kept and returned.
    pub fn insert(&self, block: Block) -> Arc<Block> {
        let mut map = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get(&block.paddr) {
            if b.insns == block.insns {
                b.verified(block.epoch.load(Ordering::Acquire));
                return b.clone();
            }
        }
        let block = Arc::new(block);
        let n = block.insns.len();
        let old = map.insert(block.paddr, block.clone());
        drop(map);
        let before = self.insns.fetch_add(n, Ordering::Relaxed);
        if let Some(old) = old {
            self.insns.fetch_sub(old.insns.len(), Ordering::Relaxed);
            self.retire(old);
        } else if before + n > self.budget {
            self.want_flush(&self.wanted.block_budget);
        }
        block
    }

    /// Takes `block` out of the map (its bytes changed), if it is still there.
    pub fn remove(&self, block: &Arc<Block>) {
        let mut map = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        if map.get(&block.paddr).is_some_and(|b| Arc::ptr_eq(b, block)) {
            map.remove(&block.paddr);
            drop(map);
            self.insns.fetch_sub(block.insns.len(), Ordering::Relaxed);
            self.retire(block.clone());
        }
    }

    /// Keeps a block that left the map alive while its compiled code may still run: a
    /// hart's table of compiled blocks holds bare code addresses, and that code points
    /// into the block (its instructions, its link cells). A block whose region was sent
    /// to be compiled counts too: its code may arrive after it left the map.
    fn retire(&self, block: Arc<Block>) {
        if block.compiled().is_none() && block.region.get().is_none() {
            return;
        }
        let mut r = lock(&self.retired);
        r.push(block);
        if r.len() > MAX_RETIRED {
            drop(r);
            self.want_flush(&self.wanted.retired);
        }
    }

    /// A hart executed `fence.i`: every block is compared with memory before it runs
    /// again, and every chain is undone.
    pub fn fence_i(&self) {
        let mut links = lock(&self.links);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(jit) = &self.jit {
            let miss = jit.miss_stub();
            for c in links.drain(..) {
                // SAFETY: see `CellPtr`.
                unsafe { (*c.0).unlink(miss) };
            }
        } else {
            links.clear();
        }
    }

    /// Links `cell` to `f` when the code epoch is still `verified`, the epoch in which
    /// the caller found `f`'s block current.
    ///
    /// # Safety
    /// `cell` belongs to a block of the map (or a retired one) of this generation.
    pub unsafe fn link(&self, cell: *const LinkCell, f: BlockFn, verified: u64) {
        let mut links = lock(&self.links);
        if self.epoch() == verified {
            // SAFETY: guaranteed by the caller.
            unsafe { (*cell).link(f) };
            links.push(CellPtr(cell));
        }
    }

    /// What a hart holds while it runs blocks.
    pub fn begin_slice(&self) -> RwLockReadGuard<'_, ()> {
        self.run.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The compiler threads' code space is nearly full.
    pub fn code_full(&self) {
        self.want_flush(&self.wanted.code_full);
    }

    fn want_flush(&self, why: &AtomicBool) {
        if !why.swap(true, Ordering::AcqRel) {
            for h in &self.harts {
                h.request_exit();
            }
        }
    }

    /// Whether a flush is due.
    #[inline]
    pub fn flush_due(&self) -> bool {
        let w = &self.wanted;
        w.code_full.load(Ordering::Relaxed)
            || w.block_budget.load(Ordering::Relaxed)
            || w.retired.load(Ordering::Relaxed)
    }

    /// Flushes everything if a flush is due: waits until no hart runs, then drops every
    /// block and all compiled code. Call it outside a slice.
    pub fn flush_if_due(&self) {
        if !self.flush_due() {
            return;
        }
        let _stopped = self.run.write().unwrap_or_else(|e| e.into_inner());
        let w = &self.wanted;
        let reasons = [
            w.code_full.swap(false, Ordering::AcqRel),
            w.block_budget.swap(false, Ordering::AcqRel),
            w.retired.swap(false, Ordering::AcqRel),
        ];
        if !reasons.contains(&true) {
            // Another hart flushed first.
            return;
        }
        self.blocks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.insns.store(0, Ordering::Relaxed);
        lock(&self.links).clear();
        lock(&self.retired).clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Harts see the new generation before they run anything (they drop their own
        // caches); compiler threads free their old code when they see it.
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut f = lock(&self.flushes);
        let [code, budget, retired] = reasons;
        f.code_full += u64::from(code);
        f.block_budget += u64::from(budget);
        f.retired += u64::from(retired);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
