//! `--lockstep`: every compiled region that can run twice is run again by the
//! interpreter from the same state, and the machine stops at the first difference.

use rivet_jit::backend::BlockFn;
use rivet_jit::frontend::{Insn, Op};

use super::blocks::Block;
use super::dispatch::Interp;
use crate::exec::interpret;
use crate::hart::{ArchState, Hart};

impl Interp {
    /// `--lockstep`: runs a compiled region and, for regions that can run twice, the
    /// interpreter from the same starting state over as many instructions; stops the
    /// machine at the first difference in the architectural state (x, f, pc, instret,
    /// privilege, CSRs, PMP, reservation). Regions that store or read the clock, and
    /// runs that touched a device, run compiled only and count as unchecked.
    pub(super) fn lockstep(&mut self, h: &mut Hart, block: &Block, f: BlockFn) {
        let cache = self.cache.clone();
        let Some(jit) = cache.jit.as_ref() else {
            return;
        };
        self.stats.compiled_runs += 1;
        let region = block.region.get().cloned().unwrap_or_default();
        if !region.iter().all(|m| replayable(&m.insns)) {
            self.stats.unchecked += 1;
            jit.run(h, f);
            return;
        }
        let start = h.arch_state();
        let mmio = h.mmio_accesses;
        jit.run(h, f);
        if h.mmio_accesses != mmio {
            // A device saw the accesses (reads may have side effects): not replayed.
            self.stats.unchecked += 1;
            return;
        }
        self.stats.checked += 1;
        let got = h.arch_state();
        h.restore_arch_state(&start);
        self.interpret_to(h, got.instret, got.pc);
        let want = h.arch_state();
        if got != want {
            eprintln!(
                "rivet: lockstep mismatch in the region at {:#x} (hart {}):",
                start.pc, h.hartid
            );
            for m in region.iter() {
                let mut pc = start.pc.wrapping_add(m.offset);
                for i in m.insns.iter() {
                    eprintln!(
                        "  {pc:016x}: {:08x}  {}",
                        i.raw,
                        rivet_jit::frontend::disasm::disasm(i, pc)
                    );
                    pc = pc.wrapping_add(u64::from(i.len));
                }
                eprintln!();
            }
            eprintln!("  interpreter: {}", describe_diff(&want, &got, true));
            eprintln!("  compiled:    {}", describe_diff(&want, &got, false));
            h.shared
                .power
                .request(rivet_devices::power::PowerEvent::Fail(LOCKSTEP_FAIL));
        }
    }

    /// Interprets from the hart's state until `instret` instructions have retired;
    /// then, if the pc is not `pc`, one instruction more (compiled code that trapped on
    /// an instruction stopped before it retired).
    fn interpret_to(&mut self, h: &mut Hart, instret: u64, pc: u64) {
        let mut extra = false;
        for _ in 0..1 << 20 {
            if h.instret >= instret {
                if h.pc == pc || extra {
                    return;
                }
                // Compiled code stopped at a trap: the interpreter takes it too.
                extra = true;
            }
            let left = if extra { 1 } else { instret - h.instret };
            let before = h.instret;
            match self.block(h) {
                Ok(b) if !b.insns.is_empty() => {
                    // Compiled code may stop inside a block (an access its helper
                    // performed): stop where it stopped.
                    let k = b
                        .insns
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    interpret(h, &b.insns[..k], false);
                }
                Ok(_) => return,
                Err(e) => h.raise(e),
            }
            if h.instret == before && !extra {
                // A trap before any instruction retired.
                return;
            }
        }
    }
}

/// Whether `--lockstep` can run a block twice from the same state: it must not change
/// memory (a second run would see its own stores; devices would see accesses twice)
/// and must not read the host clock (`time`).
fn replayable(insns: &[Insn]) -> bool {
    insns.iter().all(|i| {
        let csr_time = matches!(
            i.op,
            Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci
        ) && matches!(
            i.csr(),
            crate::hart::csr::num::TIME
                | crate::hart::csr::num::STIMECMP
                | crate::hart::csr::num::VSTIMECMP
        );
        let writes = matches!(
            i.op,
            Op::Sb
                | Op::Sh
                | Op::Sw
                | Op::Sd
                | Op::Fsw
                | Op::Fsd
                | Op::ScW
                | Op::ScD
                | Op::CboZero
                | Op::HsvB
                | Op::HsvH
                | Op::HsvW
                | Op::HsvD
        ) || i.op.ext() == Some(rivet_jit::frontend::Ext::A);
        !csr_time && !writes
    })
}

/// The exit status a lockstep mismatch stops the machine with.
pub const LOCKSTEP_FAIL: u32 = 0x1c;

/// The fields where `a` and `b` differ, with `a`'s values (or `b`'s when `!first`).
fn describe_diff(a: &ArchState, b: &ArchState, first: bool) -> String {
    let s = if first { a } else { b };
    let o = if first { b } else { a };
    let mut out = Vec::new();
    for r in 0..32 {
        if s.x[r] != o.x[r] {
            out.push(format!("x{r}={:#x}", s.x[r]));
        }
        if s.f[r] != o.f[r] {
            out.push(format!("f{r}={:#x}", s.f[r]));
        }
    }
    if s.pc != o.pc {
        out.push(format!("pc={:#x}", s.pc));
    }
    if s.instret != o.instret {
        out.push(format!("instret={}", s.instret));
    }
    if s.prv != o.prv || s.virt != o.virt {
        out.push(format!("prv={:?} virt={}", s.prv, s.virt));
    }
    if s.pmp != o.pmp {
        out.push(format!("pmp={:?}", s.pmp));
    }
    if s.csr != o.csr {
        out.push(format!("csr={:?}", s.csr));
    }
    if s.reservation != o.reservation || s.waiting != o.waiting || s.cycle_offset != o.cycle_offset
    {
        out.push(format!(
            "reservation={:?} waiting={} cycle_offset={}",
            s.reservation, s.waiting, s.cycle_offset
        ));
    }
    if s.code_flush_pending != o.code_flush_pending {
        out.push(format!("fence.i={}", s.code_flush_pending));
    }
    out.join(" ")
}
