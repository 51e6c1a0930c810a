//! Decoded blocks and tiering: a block is decoded once and cached by the physical
//! address of its first instruction; blocks never cross a page, so a block is valid for
//! every virtual mapping of its page. A block run often enough is compiled by tier 1,
//! together with the hot blocks of the loops through it (its region).

use std::hash::Hasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rivet_jit::backend::{link_cells_for, successors, BlockFn, LinkCell};
use rivet_jit::frontend::{decode_for, Insn};

use super::dispatch::{FastEntry, Interp, JUMP_CACHE};
use super::tier1::{Region, RegionBlock, Request};
use crate::hart::trap::Exception;
use crate::hart::Hart;

/// Longest block, in instructions.
const MAX_BLOCK: usize = 64;
/// Most blocks, and most instructions, in one compiled region.
const REGION_BLOCKS: usize = 16;
const REGION_INSNS: usize = 256;

/// A decoded block, shared by every hart through the machine's code cache: its
/// tiering state is atomic, and its compiled code is installed by a compiler thread.
pub struct Block {
    /// Shared with the compiler thread while it compiles the block.
    pub insns: Arc<[Insn]>,
    /// The physical address of the first instruction.
    pub(super) paddr: u64,
    /// Interpreted runs so far, on all harts (tiering).
    pub(super) runs: AtomicU32,
    /// The block is a member of a region sent to be compiled (not as its first block).
    pub(super) claimed: AtomicBool,
    /// The address of the block's compiled code (of the region it starts), 0 until tier
    /// 1 compiled it. Compiled code points into the region's instructions, which live as
    /// long as the block (see [`super::cache`] on when blocks go).
    pub(super) compiled: AtomicUsize,
    /// The region sent to be compiled (its first member is this block): its other
    /// members' bytes are checked with this block's.
    pub(super) region: OnceLock<Region>,
    /// The code epoch at which the block's bytes were last known to be in memory.
    pub(super) epoch: AtomicU64,
    /// Where the compiled code's exits to fixed successors look for them (chaining).
    pub(super) links: OnceLock<Box<[LinkCell]>>,
    /// The block's fixed successors in its own page, as offsets from its first byte
    /// ([`successors`]), and the blocks found there when the interpreter last ran
    /// through them: the dispatcher takes the next block from here instead of looking
    /// it up (see [`Interp::run`]).
    pub(super) next: [Option<u64>; 2],
    pub(super) next_blocks: Mutex<[Weak<Block>; 2]>,
}

impl Block {
    /// The block's compiled code, once there is some.
    #[inline]
    pub(super) fn compiled(&self) -> Option<BlockFn> {
        // SAFETY: only compiler threads store here, and only addresses of compiled
        // blocks.
        unsafe { BlockFn::from_addr(self.compiled.load(Ordering::Acquire)) }
    }

    /// Records that the block's bytes were found in memory in code epoch `epoch`.
    #[inline]
    pub(super) fn verified(&self, epoch: u64) {
        self.epoch.fetch_max(epoch, Ordering::AcqRel);
    }

    /// Whether the block was verified in code epoch `epoch`.
    #[inline]
    pub(super) fn current(&self, epoch: u64) -> bool {
        self.epoch.load(Ordering::Acquire) == epoch
    }

    /// Which fixed successor of this block (run at `pc`) `next` is, if any.
    pub(super) fn successor_slot(&self, pc: u64, next: u64) -> Option<usize> {
        let delta = next.wrapping_sub(pc);
        self.next.iter().position(|&d| d == Some(delta))
    }

    /// Whether the guest RAM at `host` (the host address of the block's first byte)
    /// still holds the block and the rest of its region.
    ///
    /// # Safety
    /// `host` points into guest RAM with the block's page readable.
    pub(super) unsafe fn matches_host(&self, host: *const u8) -> bool {
        let others = self.region.get().map_or(&[][..], |r| &r[1..]);
        // SAFETY: members lie in the block's page (see `Interp::region`).
        unsafe {
            matches_host(&self.insns, host)
                && others
                    .iter()
                    .all(|m| matches_host(&m.insns, host.wrapping_add(m.offset as usize)))
        }
    }

    /// Whether guest RAM at physical `paddr` still holds the block and its region.
    pub(super) fn still_in_memory(&self, h: &Hart, paddr: u64) -> bool {
        // SAFETY: `host_ptr` checked that the page is in RAM.
        h.shared
            .ram
            .host_ptr(paddr & !0xfff, 0x1000)
            .is_some_and(|page| unsafe {
                self.matches_host(page.wrapping_add((paddr & 0xfff) as usize))
            })
    }
}

/// The hasher of the block map's physical addresses: one multiply (Fibonacci
/// hashing); the keys are not chosen by an adversary who gains from collisions beyond
/// slowing their own guest.
#[derive(Default)]
pub(super) struct PageHasher(u64);

impl Hasher for PageHasher {
    fn finish(&self) -> u64 {
        // The product's high bits are the well-mixed ones; the table indexes by the
        // low bits.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Whether the guest RAM at `host` still holds `insns`: a block verified after a
/// `fence.i` without translating its address again.
///
/// # Safety
/// `host` points into guest RAM with the block's whole length readable.
unsafe fn matches_host(insns: &[Insn], host: *const u8) -> bool {
    let mut p = host;
    for i in insns {
        // SAFETY: guaranteed by the caller; other harts may store concurrently, as
        // they may on hardware, and a torn read only fails the comparison.
        let now = unsafe {
            if i.len == 4 {
                std::ptr::read_volatile(p as *const [u8; 4])
            } else {
                let [a, b] = std::ptr::read_volatile(p as *const [u8; 2]);
                [a, b, 0, 0]
            }
        };
        if u32::from_le_bytes(now) != i.raw {
            return false;
        }
        // SAFETY: still inside the block, see above.
        p = unsafe { p.add(usize::from(i.len)) };
    }
    true
}

/// Decodes the block starting at virtual `pc` (physical `paddr`); it ends at a
/// block-ending instruction, at MAX_BLOCK, or before an instruction that leaves the page.
pub(super) fn decode_block(
    h: &mut Hart,
    pc: u64,
    paddr: u64,
    epoch: u64,
) -> Result<Block, Exception> {
    let mut insns = Vec::new();
    let page_end = (paddr | 0xfff) + 1;
    let mut p = paddr;
    while insns.len() < MAX_BLOCK {
        if p + 2 > page_end {
            break;
        }
        let lo = h.fetch_phys_u16(p, pc + (p - paddr))?;
        let raw = if lo & 3 == 3 {
            if p + 4 > page_end {
                break;
            }
            u32::from(lo) | u32::from(h.fetch_phys_u16(p + 2, pc + (p + 2 - paddr))?) << 16
        } else {
            u32::from(lo)
        };
        let insn = decode_for(raw, h.exts);
        insns.push(insn);
        p += u64::from(insn.len);
        if insn.ends_block() {
            break;
        }
    }
    // Fixed successors in the same page (a fall-through past the page's end is not).
    let next = successors(&insns, pc).map(|s| {
        s.filter(|&t| (t ^ pc) & !0xfff == 0)
            .map(|t| t.wrapping_sub(pc))
    });
    Ok(Block {
        next,
        next_blocks: Mutex::new([Weak::new(), Weak::new()]),
        insns: insns.into(),
        paddr,
        runs: AtomicU32::new(0),
        claimed: AtomicBool::new(false),
        compiled: AtomicUsize::new(0),
        region: OnceLock::new(),
        epoch: AtomicU64::new(epoch),
        links: OnceLock::new(),
    })
}

impl Interp {
    /// The region to compile for the hot block `head` at `pc`: the head and the blocks
    /// of the loops through it. Candidates are found breadth first among the blocks of
    /// its page it continues at ([`successors`]) that are decoded, known to be current,
    /// and hot themselves (`min_runs` interpreted runs, or compiled); those from which
    /// the head can be reached again are kept, up to [`REGION_BLOCKS`] blocks and
    /// [`REGION_INSNS`] instructions. A head on no loop is compiled alone: chaining
    /// joins straight-line code at little cost, while a loop kept in one function keeps
    /// its registers in host registers from one iteration to the next.
    pub(super) fn region(&self, head: &Block, pc: u64, min_runs: u32) -> Region {
        // Candidates (offset from `pc`, block) and the edges between them.
        let mut found: Vec<(u64, Arc<Block>)> = Vec::new();
        let epoch = self.cache.epoch();
        let mut edges: Vec<(usize, usize)> = Vec::new();
        let mut n = 0;
        while n <= found.len() && found.len() < 2 * REGION_BLOCKS {
            let (at, insns) = match n {
                0 => (pc, &head.insns),
                _ => (pc.wrapping_add(found[n - 1].0), &found[n - 1].1.insns),
            };
            for s in successors(insns, at).into_iter().flatten() {
                let offset = s.wrapping_sub(pc);
                if (s ^ pc) & !0xfff != 0 {
                    continue;
                }
                if offset == 0 {
                    edges.push((n, 0));
                    continue;
                }
                if let Some(k) = found.iter().position(|f| f.0 == offset) {
                    edges.push((n, k + 1));
                    continue;
                }
                let Some(b) = self.cache.lookup(head.paddr.wrapping_add(offset)) else {
                    continue;
                };
                let hot = b.runs.load(Ordering::Relaxed) >= min_runs || b.compiled().is_some();
                if hot && b.current(epoch) && !b.insns.is_empty() {
                    found.push((offset, b));
                    edges.push((n, found.len()));
                }
            }
            n += 1;
        }
        // Node 0 is the head, node k the candidate found[k - 1]; keep those that reach
        // the head again.
        let mut reaches = vec![false; found.len() + 1];
        reaches[0] = true;
        loop {
            let mut changed = false;
            for &(from, to) in &edges {
                if reaches[to] && !reaches[from] {
                    reaches[from] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = vec![RegionBlock {
            offset: 0,
            insns: head.insns.clone(),
        }];
        let mut total = head.insns.len();
        for (k, (offset, b)) in found.iter().enumerate() {
            let offset = *offset;
            if !reaches[k + 1] || out.len() >= REGION_BLOCKS || total + b.insns.len() > REGION_INSNS
            {
                continue;
            }
            total += b.insns.len();
            b.claimed.store(true, Ordering::Relaxed);
            out.push(RegionBlock {
                offset,
                insns: b.insns.clone(),
            });
        }
        out.into()
    }

    /// Runs one block: compiled when tier 1 has compiled it (compiling its region once
    /// it is hot), else interpreted. `link` is the exit the previous compiled run left
    /// through.
    #[inline]
    pub(super) fn run_block(
        &mut self,
        h: &mut Hart,
        block: &Arc<Block>,
        link: Option<(*const LinkCell, u64)>,
    ) -> bool {
        let Some(jit) = self.cache.jit.as_ref() else {
            return self.interpret(h, &block.insns);
        };
        let f = match block.compiled() {
            Some(f) => Some(f),
            None => {
                let mut runs = block.runs.load(Ordering::Relaxed).saturating_add(1);
                let due = runs >= jit.threshold_now() && block.region.get().is_none();
                if due && block.claimed.swap(false, Ordering::Relaxed) {
                    // Part of a region on its way: once that region runs, this block
                    // is reached inside it. Only if it stays hot on its own after
                    // another round of runs does it become a region of its own.
                    runs = 0;
                }
                block.runs.store(runs, Ordering::Relaxed);
                if due && runs != 0 {
                    self.compile(h, block)
                } else {
                    None
                }
            }
        };
        let Some(f) = f else {
            let queued = block.region.get().is_some();
            let before = self.stats.interpreted;
            let whole = self.interpret(h, &block.insns);
            if queued {
                self.stats.queued += self.stats.interpreted - before;
            }
            return whole;
        };
        if self.lockstep {
            self.lockstep(h, block, f);
            return false;
        }
        if let Some(host) = h.fetch_host(h.pc) {
            // The page is mapped whole (one L1 entry): chaining within it is sound.
            self.link_exit(link, h, f);
            let slot = ((h.pc >> 1) as usize) & (JUMP_CACHE - 1);
            self.fast[slot] = FastEntry {
                pc: h.pc,
                host: host as usize,
                epoch: h.link_epoch,
                f: Some(f),
            };
        }
        self.run_compiled(h, f);
        false
    }

    /// Sends the region of the hot block `block` at `h.pc` to be compiled, once (the
    /// hart that sets the region sends it); with `--jit-sync` waits for the code.
    fn compile(&mut self, h: &Hart, block: &Arc<Block>) -> Option<BlockFn> {
        let jit = self.cache.jit.as_ref()?;
        let region = self.region(block, h.pc, (jit.threshold / 8).max(1));
        let mut mine = false;
        let region = block.region.get_or_init(|| {
            mine = true;
            region
        });
        if !mine {
            return block.compiled();
        }
        let miss = jit.miss_stub();
        block.links.get_or_init(|| {
            (0..link_cells_for(region.len()))
                .map(|_| LinkCell::new(miss))
                .collect()
        });
        jit.compile(Request::new(block.clone(), h.pc, self.cache.generation()));
        block.compiled()
    }
}
