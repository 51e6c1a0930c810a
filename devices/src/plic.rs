//! Platform-Level Interrupt Controller (RISC-V PLIC specification 1.0.0), laid out as
//! QEMU's `sifive_plic` on the virt board: 96 sources (source 0 reserved), 3 priority
//! bits, two contexts per hart (context 2h is hart h's M-mode, 2h + 1 its S-mode).
//!
//! | offset                         | register                                  |
//! |--------------------------------|-------------------------------------------|
//! | 0x000000 + 4 * source          | priority                                  |
//! | 0x001000 + 4 * word            | pending bits (read-only)                  |
//! | 0x002000 + 0x80 * ctx + 4 * w  | enable bits of a context                  |
//! | 0x200000 + 0x1000 * ctx        | priority threshold of a context           |
//! | 0x200004 + 0x1000 * ctx        | claim (read) / complete (write)           |
//!
//! Registers are 32 bits wide; other access sizes or misaligned accesses read 0 and
//! write nothing (QEMU accepts only aligned 4-byte accesses).
//!
//! Gateways (spec 1.0.0 chapter 5): a level source is pending while its line is high and
//! it is not claimed; when the line drops before a claim the request is withdrawn (as
//! QEMU does), and a completion with the line still high makes it pending again. An edge
//! source becomes pending on a rising edge, and an edge that arrives while the source is
//! claimed stays latched until completion.
//!
//! Whenever the state changes, each context's interrupt output (some enabled, pending,
//! unclaimed source with priority above the context's threshold) drives MEIP or SEIP of
//! its hart. Lock order: PLIC state, then the hart signal word (which never calls out).

use crate::bus::MmioDevice;
use crate::irq::{HartSignals, IrqLine, MEIP, SEIP};
use std::sync::{Arc, Mutex, MutexGuard};

pub const PRIORITY_BASE: u64 = 0x0;
pub const PENDING_BASE: u64 = 0x1000;
pub const ENABLE_BASE: u64 = 0x2000;
pub const ENABLE_STRIDE: u64 = 0x80;
pub const CONTEXT_BASE: u64 = 0x20_0000;
pub const CONTEXT_STRIDE: u64 = 0x1000;

/// Sources on QEMU's virt board (`VIRT_IRQCHIP_NUM_SOURCES`, source 0 included); the
/// device tree's `riscv,ndev` is one less.
pub const VIRT_NUM_SOURCES: u32 = 96;
/// The PLIC window QEMU's virt board maps (room for 512 harts).
pub const VIRT_SIZE: u64 = 0x60_0000;
/// Most sources, source 0 included (spec: IDs 1 to 1023).
pub const MAX_SOURCES: u32 = 1024;
/// Most contexts the register map has room for (spec: 15872).
pub const MAX_CONTEXTS: usize = ((CONTEXT_BASE - ENABLE_BASE) / ENABLE_STRIDE) as usize;
/// Priority bits, as QEMU's virt board (`VIRT_IRQCHIP_NUM_PRIO_BITS`).
pub const PRIORITY_BITS: u32 = 3;
const PRIORITY_MASK: u32 = (1 << PRIORITY_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlicError {
    #[error("A PLIC has 2 to {MAX_SOURCES} sources (source 0 included), not {0}")]
    Sources(u32),
    #[error("A PLIC serves at most {max} harts, not {0}", max = MAX_CONTEXTS / 2)]
    TooManyHarts(usize),
    #[error("PLIC source {id} does not exist (sources are 1 to {last})")]
    NoSource { id: u32, last: u32 },
}

struct State {
    /// Per source; source 0 stays 0.
    priority: Vec<u32>,
    // Bit sets over sources, 32 per word.
    pending: Vec<u32>,
    claimed: Vec<u32>,
    level: Vec<u32>,
    edge: Vec<u32>,
    /// `words` per context.
    enable: Vec<u32>,
    threshold: Vec<u32>,
}

struct Inner {
    harts: Vec<Arc<HartSignals>>,
    num_sources: u32,
    words: usize,
    st: Mutex<State>,
}

fn bit(set: &[u32], id: u32) -> bool {
    set.get((id / 32) as usize)
        .is_some_and(|w| w & (1 << (id % 32)) != 0)
}

fn set_bit(set: &mut [u32], id: u32, on: bool) {
    if let Some(w) = set.get_mut((id / 32) as usize) {
        if on {
            *w |= 1 << (id % 32);
        } else {
            *w &= !(1 << (id % 32));
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn contexts(&self) -> usize {
        self.harts.len() * 2
    }

    /// The bits of enable word `w` that name real sources (source 0 is not one).
    fn valid_mask(&self, w: usize) -> u32 {
        let first = w as u32 * 32;
        let mut mask = match self.num_sources.saturating_sub(first) {
            n if n >= 32 => u32::MAX,
            n => (1u32 << n) - 1,
        };
        if w == 0 {
            mask &= !1;
        }
        mask
    }

    /// The source context `ctx` would claim now: the highest priority above the
    /// threshold among its enabled, pending, unclaimed sources; ties go to the lowest ID
    /// (spec 1.0.0 chapter 4).
    fn best(&self, st: &State, ctx: usize) -> Option<u32> {
        let enable = st.enable.get(ctx * self.words..(ctx + 1) * self.words)?;
        let mut best_prio = *st.threshold.get(ctx)?;
        let mut best = None;
        for (w, &en) in enable.iter().enumerate() {
            let mut cand = st.pending[w] & !st.claimed[w] & en;
            while cand != 0 {
                let id = w as u32 * 32 + cand.trailing_zeros();
                cand &= cand - 1;
                let prio = st.priority.get(id as usize).copied().unwrap_or(0);
                if prio > best_prio {
                    best_prio = prio;
                    best = Some(id);
                }
            }
        }
        best
    }

    /// Drives every context's output onto its hart's MEIP / SEIP.
    fn update(&self, st: &State) {
        for ctx in 0..self.contexts() {
            let mask = if ctx % 2 == 0 { MEIP } else { SEIP };
            if let Some(hart) = self.harts.get(ctx / 2) {
                hart.set_level(mask, self.best(st, ctx).is_some());
            }
        }
    }

    fn set_source(&self, id: u32, high: bool) {
        let mut st = self.lock();
        let was_pending = bit(&st.pending, id);
        if bit(&st.edge, id) {
            if high && !bit(&st.level, id) {
                set_bit(&mut st.pending, id, true);
            }
        } else if !bit(&st.claimed, id) {
            set_bit(&mut st.pending, id, high);
        }
        set_bit(&mut st.level, id, high);
        if bit(&st.pending, id) != was_pending {
            self.update(&st);
        }
    }

    fn claim(&self, ctx: usize) -> u32 {
        let mut st = self.lock();
        let Some(id) = self.best(&st, ctx) else {
            return 0;
        };
        set_bit(&mut st.pending, id, false);
        set_bit(&mut st.claimed, id, true);
        self.update(&st);
        id
    }

    fn complete(&self, ctx: usize, id: u32) {
        let mut st = self.lock();
        if id == 0 || id >= self.num_sources {
            return;
        }
        // Spec 1.0.0 chapter 9: a completion for a source not enabled for this context
        // is ignored.
        let enabled = st
            .enable
            .get(ctx * self.words..(ctx + 1) * self.words)
            .is_some_and(|en| bit(en, id));
        if !enabled || !bit(&st.claimed, id) {
            return;
        }
        set_bit(&mut st.claimed, id, false);
        if !bit(&st.edge, id) && bit(&st.level, id) {
            set_bit(&mut st.pending, id, true);
        }
        self.update(&st);
    }

    fn read32(&self, offset: u64) -> u32 {
        if offset < PENDING_BASE {
            let st = self.lock();
            return st.priority.get((offset / 4) as usize).copied().unwrap_or(0);
        }
        if offset < ENABLE_BASE {
            let st = self.lock();
            return st
                .pending
                .get(((offset - PENDING_BASE) / 4) as usize)
                .copied()
                .unwrap_or(0);
        }
        if offset < CONTEXT_BASE {
            let rel = offset - ENABLE_BASE;
            let (ctx, w) = (
                (rel / ENABLE_STRIDE) as usize,
                (rel % ENABLE_STRIDE / 4) as usize,
            );
            if ctx >= self.contexts() || w >= self.words {
                return 0;
            }
            return self.lock().enable[ctx * self.words + w];
        }
        let rel = offset - CONTEXT_BASE;
        let Ok(ctx) = usize::try_from(rel / CONTEXT_STRIDE) else {
            return 0;
        };
        if ctx >= self.contexts() {
            return 0;
        }
        match rel % CONTEXT_STRIDE {
            0 => self.lock().threshold[ctx],
            4 => self.claim(ctx),
            _ => 0,
        }
    }

    fn write32(&self, offset: u64, value: u32) {
        if offset < PENDING_BASE {
            let id = (offset / 4) as usize;
            if id == 0 || id >= self.num_sources as usize {
                return;
            }
            let mut st = self.lock();
            st.priority[id] = value & PRIORITY_MASK;
            self.update(&st);
            return;
        }
        if offset < ENABLE_BASE {
            // Pending bits are read-only (QEMU ignores such writes too).
            return;
        }
        if offset < CONTEXT_BASE {
            let rel = offset - ENABLE_BASE;
            let (ctx, w) = (
                (rel / ENABLE_STRIDE) as usize,
                (rel % ENABLE_STRIDE / 4) as usize,
            );
            if ctx >= self.contexts() || w >= self.words {
                return;
            }
            let mut st = self.lock();
            st.enable[ctx * self.words + w] = value & self.valid_mask(w);
            self.update(&st);
            return;
        }
        let rel = offset - CONTEXT_BASE;
        let Ok(ctx) = usize::try_from(rel / CONTEXT_STRIDE) else {
            return;
        };
        if ctx >= self.contexts() {
            return;
        }
        match rel % CONTEXT_STRIDE {
            0 => {
                let mut st = self.lock();
                st.threshold[ctx] = value & PRIORITY_MASK;
                self.update(&st);
            }
            4 => self.complete(ctx, value),
            _ => {}
        }
    }
}

/// A PLIC serving `harts.len()` harts.
pub struct Plic {
    inner: Arc<Inner>,
}

impl Plic {
    /// A PLIC with sources `1..num_sources` (QEMU's convention: `num_sources` counts the
    /// reserved source 0; the virt board uses [`VIRT_NUM_SOURCES`]).
    pub fn new(num_sources: u32, harts: Vec<Arc<HartSignals>>) -> Result<Arc<Self>, PlicError> {
        if !(2..=MAX_SOURCES).contains(&num_sources) {
            return Err(PlicError::Sources(num_sources));
        }
        if harts.len() > MAX_CONTEXTS / 2 {
            return Err(PlicError::TooManyHarts(harts.len()));
        }
        let words = num_sources.div_ceil(32) as usize;
        let contexts = harts.len() * 2;
        let inner = Inner {
            harts,
            num_sources,
            words,
            st: Mutex::new(State {
                priority: vec![0; num_sources as usize],
                pending: vec![0; words],
                claimed: vec![0; words],
                level: vec![0; words],
                edge: vec![0; words],
                enable: vec![0; words * contexts],
                threshold: vec![0; contexts],
            }),
        };
        inner.update(&inner.lock());
        Ok(Arc::new(Self {
            inner: Arc::new(inner),
        }))
    }

    /// The window this PLIC's registers need: up to the last context's claim register.
    /// A board may map a larger window (QEMU's virt maps [`VIRT_SIZE`]).
    pub fn size(&self) -> u64 {
        CONTEXT_BASE + CONTEXT_STRIDE * self.inner.contexts() as u64
    }

    /// Number of sources, source 0 included.
    pub fn num_sources(&self) -> u32 {
        self.inner.num_sources
    }

    fn handle(&self, id: u32, edge: bool) -> Result<Arc<dyn IrqLine>, PlicError> {
        if id == 0 || id >= self.inner.num_sources {
            return Err(PlicError::NoSource {
                id,
                last: self.inner.num_sources - 1,
            });
        }
        set_bit(&mut self.inner.lock().edge, id, edge);
        Ok(Arc::new(PlicLine {
            inner: self.inner.clone(),
            id,
        }))
    }

    /// The level-triggered input line of source `id`.
    pub fn line(&self, id: u32) -> Result<Arc<dyn IrqLine>, PlicError> {
        self.handle(id, false)
    }

    /// The input line of source `id`, made edge-triggered: a low-to-high transition
    /// requests one interrupt.
    pub fn edge_line(&self, id: u32) -> Result<Arc<dyn IrqLine>, PlicError> {
        self.handle(id, true)
    }
}

struct PlicLine {
    inner: Arc<Inner>,
    id: u32,
}

impl IrqLine for PlicLine {
    fn set_level(&self, high: bool) {
        self.inner.set_source(self.id, high);
    }
}

impl MmioDevice for Plic {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        u64::from(self.inner.read32(offset))
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            return;
        }
        self.inner.write32(offset, value as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plic(harts: usize) -> (Arc<Plic>, Vec<Arc<HartSignals>>) {
        let sigs: Vec<_> = (0..harts).map(|_| Arc::new(HartSignals::new())).collect();
        (Plic::new(VIRT_NUM_SOURCES, sigs.clone()).unwrap(), sigs)
    }

    fn prio(p: &Plic, id: u64, v: u64) {
        p.write(0, PRIORITY_BASE + 4 * id, 4, v);
    }

    fn enable(p: &Plic, ctx: u64, id: u64) {
        let off = ENABLE_BASE + ENABLE_STRIDE * ctx + 4 * (id / 32);
        let old = p.read(0, off, 4);
        p.write(0, off, 4, old | 1 << (id % 32));
    }

    fn claim(p: &Plic, ctx: u64) -> u64 {
        p.read(0, CONTEXT_BASE + CONTEXT_STRIDE * ctx + 4, 4)
    }

    fn complete(p: &Plic, ctx: u64, id: u64) {
        p.write(0, CONTEXT_BASE + CONTEXT_STRIDE * ctx + 4, 4, id);
    }

    fn threshold(p: &Plic, ctx: u64, v: u64) {
        p.write(0, CONTEXT_BASE + CONTEXT_STRIDE * ctx, 4, v);
    }

    #[test]
    fn priorities_are_three_bits_and_source_zero_is_fixed() {
        let (p, _) = plic(1);
        prio(&p, 5, 0xff);
        assert_eq!(p.read(0, PRIORITY_BASE + 20, 4), 7);
        prio(&p, 0, 7);
        assert_eq!(p.read(0, PRIORITY_BASE, 4), 0);
        prio(&p, 96, 7);
        assert_eq!(p.read(0, PRIORITY_BASE + 4 * 96, 4), 0);
        // Only aligned 32-bit accesses reach registers.
        assert_eq!(p.read(0, PRIORITY_BASE + 20, 8), 0);
        assert_eq!(p.read(0, PRIORITY_BASE + 21, 4), 0);
    }

    #[test]
    fn enable_bits_exist_only_for_real_sources() {
        let (p, _) = plic(1);
        let e = ENABLE_BASE + ENABLE_STRIDE;
        p.write(0, e, 4, u64::MAX);
        assert_eq!(p.read(0, e, 4), 0xffff_fffe);
        p.write(0, e + 8, 4, u64::MAX);
        assert_eq!(p.read(0, e + 8, 4), 0xffff_ffff); // sources 64..95
        p.write(0, e + 12, 4, u64::MAX);
        assert_eq!(p.read(0, e + 12, 4), 0);
        // Context 2 belongs to a hart that does not exist.
        p.write(0, ENABLE_BASE + 2 * ENABLE_STRIDE, 4, u64::MAX);
        assert_eq!(p.read(0, ENABLE_BASE + 2 * ENABLE_STRIDE, 4), 0);
    }

    #[test]
    fn claim_orders_by_priority_then_lowest_id() {
        let (p, harts) = plic(1);
        let lines: Vec<_> = [3, 5, 7].iter().map(|&i| p.line(i).unwrap()).collect();
        for (id, pr) in [(3, 2), (5, 5), (7, 5)] {
            prio(&p, id, pr);
            enable(&p, 0, id);
        }
        for l in &lines {
            l.set_level(true);
        }
        assert_eq!(p.read(0, PENDING_BASE, 4), (1 << 3) | (1 << 5) | (1 << 7));
        assert_eq!(harts[0].pending() & MEIP, MEIP);
        assert_eq!(harts[0].pending() & SEIP, 0);
        assert_eq!(claim(&p, 0), 5);
        assert_eq!(claim(&p, 0), 7);
        assert_eq!(claim(&p, 0), 3);
        assert_eq!(harts[0].pending() & MEIP, 0, "everything is claimed");
        assert_eq!(claim(&p, 0), 0);
        assert_eq!(p.read(0, PENDING_BASE, 4), 0);
    }

    #[test]
    fn threshold_masks_priorities_at_or_below_it() {
        let (p, harts) = plic(1);
        let l = p.line(9).unwrap();
        prio(&p, 9, 3);
        enable(&p, 1, 9);
        threshold(&p, 1, 3);
        l.set_level(true);
        assert_eq!(harts[0].pending() & SEIP, 0);
        assert_eq!(claim(&p, 1), 0);
        threshold(&p, 1, 2);
        assert_eq!(harts[0].pending() & SEIP, SEIP);
        assert_eq!(p.read(0, CONTEXT_BASE + CONTEXT_STRIDE, 4), 2);
        // Priority 0 never interrupts.
        prio(&p, 9, 0);
        threshold(&p, 1, 0);
        assert_eq!(harts[0].pending() & SEIP, 0);
    }

    #[test]
    fn contexts_map_to_m_and_s_of_each_hart() {
        let (p, harts) = plic(2);
        let l = p.line(10).unwrap();
        prio(&p, 10, 1);
        enable(&p, 3, 10); // hart 1, S-mode
        l.set_level(true);
        assert_eq!(harts[1].pending(), SEIP);
        assert_eq!(harts[0].pending(), 0);
        enable(&p, 2, 10); // hart 1, M-mode
        assert_eq!(harts[1].pending(), SEIP | MEIP);
        assert_eq!(claim(&p, 2), 10);
        assert_eq!(
            harts[1].pending(),
            0,
            "a claimed source interrupts no context"
        );
        assert_eq!(p.size(), CONTEXT_BASE + 4 * CONTEXT_STRIDE);
    }

    #[test]
    fn level_source_repends_after_complete_while_high() {
        let (p, harts) = plic(1);
        let l = p.line(1).unwrap();
        prio(&p, 1, 1);
        enable(&p, 0, 1);
        l.set_level(true);
        assert_eq!(claim(&p, 0), 1);
        assert_eq!(harts[0].pending(), 0);
        complete(&p, 0, 1);
        assert_eq!(harts[0].pending(), MEIP, "line still high");
        assert_eq!(claim(&p, 0), 1);
        l.set_level(false);
        complete(&p, 0, 1);
        assert_eq!(harts[0].pending(), 0);
        // A request withdrawn before the claim is gone.
        l.set_level(true);
        l.set_level(false);
        assert_eq!(claim(&p, 0), 0);
    }

    #[test]
    fn edge_source_latches_edges() {
        let (p, harts) = plic(1);
        let l = p.edge_line(2).unwrap();
        prio(&p, 2, 1);
        enable(&p, 0, 2);
        l.set_level(true);
        l.set_level(false);
        assert_eq!(harts[0].pending(), MEIP, "the edge stays pending");
        assert_eq!(claim(&p, 0), 2);
        l.set_level(true);
        l.set_level(false);
        assert_eq!(harts[0].pending(), 0, "held back while claimed");
        complete(&p, 0, 2);
        assert_eq!(harts[0].pending(), MEIP);
        assert_eq!(claim(&p, 0), 2);
        complete(&p, 0, 2);
        assert_eq!(claim(&p, 0), 0);
    }

    #[test]
    fn completion_needs_the_source_enabled() {
        let (p, _) = plic(1);
        let l = p.line(4).unwrap();
        prio(&p, 4, 1);
        enable(&p, 0, 4);
        l.set_level(true);
        assert_eq!(claim(&p, 0), 4);
        p.write(0, ENABLE_BASE, 4, 0);
        complete(&p, 0, 4);
        enable(&p, 0, 4);
        assert_eq!(claim(&p, 0), 0, "still claimed: the completion was ignored");
        complete(&p, 0, 4);
        assert_eq!(claim(&p, 0), 4);
        // Bogus completions are harmless.
        complete(&p, 0, 0);
        complete(&p, 0, 96);
        complete(&p, 0, u64::MAX);
    }

    #[test]
    fn pending_is_read_only() {
        let (p, _) = plic(1);
        p.write(0, PENDING_BASE, 4, u64::MAX);
        assert_eq!(p.read(0, PENDING_BASE, 4), 0);
    }

    #[test]
    fn bad_host_configuration_is_an_error() {
        let (p, _) = plic(1);
        assert!(p.line(0).is_err());
        assert!(p.line(96).is_err());
        assert!(p.line(95).is_ok());
        assert_eq!(Plic::new(0, vec![]).err(), Some(PlicError::Sources(0)));
        assert!(Plic::new(1025, vec![]).is_err());
        assert!(Plic::new(1024, vec![]).is_ok());
    }

    #[test]
    fn uart_interrupt_reaches_the_hart_through_the_plic() {
        use crate::uart16550::Uart16550;
        let (p, harts) = plic(1);
        let uart = Uart16550::new(p.line(10).unwrap(), Box::new(std::io::sink()));
        prio(&p, 10, 1);
        enable(&p, 1, 10);
        uart.write(0, 1, 1, 1); // IER.ERBFI
        assert_eq!(harts[0].pending(), 0);
        uart.push_input(b"k");
        assert_eq!(harts[0].pending(), SEIP);
        assert_eq!(claim(&p, 1), 10);
        assert_eq!(uart.read(0, 0, 1), u64::from(b'k'));
        complete(&p, 1, 10);
        assert_eq!(
            harts[0].pending(),
            0,
            "the UART lowered its line before completion"
        );
    }

    #[test]
    fn no_access_panics() {
        let (p, _) = plic(2);
        let probes = (0..0x3000)
            .chain(CONTEXT_BASE - 8..CONTEXT_BASE + 0x10)
            .chain(CONTEXT_BASE + 4 * CONTEXT_STRIDE - 8..CONTEXT_BASE + 4 * CONTEXT_STRIDE + 8)
            .chain([VIRT_SIZE - 4, u64::MAX - 3, u64::MAX]);
        for off in probes {
            for size in [1, 2, 4, 8] {
                p.write(0, off, size, u64::MAX);
                p.read(0, off, size);
            }
        }
    }
}
