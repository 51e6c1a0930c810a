//! Guest loads and stores in compiled code: the inline L1 TLB probe (the softMMU fast
//! path) and the helper call on a miss. All memory-access lowering lives here.
//!
//! ```text
//! entry = l1_data + ((vaddr >> page_shift) & (entries - 1)) << entry_shift
//! hit   = entry.tag == vaddr & tag_mask(size)      (read tag for loads, write for stores)
//! host  = vaddr + entry.addend
//! ```
//!
//! The tag mask keeps the address bits below the access size, so a misaligned access
//! never hits: the fast path only ever performs naturally aligned host accesses (the
//! addend is a multiple of the page size), inside one RAM page that the runtime keeps
//! mapped for the machine's lifetime. Everything else (miss, MMIO, misaligned, pages
//! without the permission) is the slow path: one helper call that does what the
//! interpreter does and may take a trap.
//!
//! The slow path never joins the main line with a value of its own. Its helper either
//! refills the L1 entry so that the access now hits (the common case: a TLB miss), and
//! the fast path goes on; or it performs the whole instruction itself (a device, a
//! misaligned access, a page without uniform PMP) or takes its trap, and the function
//! returns with the hart at the next instruction or the trap handler. For that, the x
//! registers changed so far are in memory when the helper runs: written back on the
//! main line before the access in straight-line code (as TCG does before its guest
//! memory operations; they would be written back at the block's exit anyway), or by
//! the slow path itself in regions that loop, where registers stay in host registers
//! across iterations. The helper gets the instruction's pc, retired-instruction count,
//! length and destination ([`MemKind`]). A block then has two Cranelift blocks per
//! access and no block parameters, which keeps compiling cheap.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{AtomicRmwOp, Endianness, InstBuilder, MemFlagsData, Value};

use super::translate::{state_flags, Tx};
use super::{Helper, MemKind};
use crate::frontend::{Insn, Op};

/// Guest RAM through the host mapping: aligned (see the module comment), never faulting
/// (the runtime maps all of RAM), little-endian as RISC-V.
fn host_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_endianness(Endianness::Little)
}

fn size_index(size: u8) -> usize {
    match size {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    }
}

impl Tx<'_> {
    /// The guest address `x[rs1] + imm` and its L1 entry pointer.
    fn address(&mut self, i: &Insn) -> (Value, Value) {
        let base = self.get(i.rs1);
        let addr = self.add_imm(base, i64::from(i.imm));
        (addr, self.entry(addr))
    }

    /// The L1 entry pointer of guest address `addr`.
    fn entry(&mut self, addr: Value) -> Value {
        let l1 = &self.layout.l1;
        let index_mask = ((1i64 << l1.index_bits) - 1) << l1.entry_shift;
        let shift = i64::from(l1.page_shift - l1.entry_shift);
        // The table pointer changes only in `exec_one`: one load per block (and after
        // each `exec_one`), on the main line so it dominates the later accesses.
        let table = match self.l1_table {
            Some(t) => t,
            None => {
                let t = self
                    .b
                    .ins()
                    .load(I64, state_flags(), self.hart, self.layout.l1_data);
                self.l1_table = Some(t);
                t
            }
        };
        let idx = self.b.ins().ushr_imm_s(addr, shift);
        let off = self.b.ins().band_imm_s(idx, index_mask);
        self.b.ins().iadd(table, off)
    }

    /// Whether the entry's tag at `tag_off` grants an access of `size` bytes at `addr`.
    fn hit(&mut self, addr: Value, entry: Value, tag_off: i32, size: u8) -> Value {
        let tag = self.b.ins().load(I64, state_flags(), entry, tag_off);
        let mask = self.layout.l1.tag_mask[size_index(size)] as i64;
        let masked = self.b.ins().band_imm_s(addr, mask);
        self.b.ins().icmp(IntCC::Equal, tag, masked)
    }

    fn host(&mut self, addr: Value, entry: Value) -> Value {
        let addend = self
            .b
            .ins()
            .load(I64, state_flags(), entry, self.layout.l1.addend);
        self.b.ins().iadd(addr, addend)
    }

    /// The slow path of the access probed by `hit`: `helper` refills the L1 entry, or
    /// performs the whole instruction `i` at `pc` (a device, a misaligned access, a
    /// fault) and the function returns. `args` come before the [`MemKind`], pc and
    /// count. Leaves the builder in the fast path's block, where the entry grants the
    /// access.
    fn probe(&mut self, hit: Value, helper: Helper, i: &Insn, pc: u64, kind: u64, args: &[Value]) {
        let fast = self.cold_unless(hit);
        if self.joined {
            self.store_dirty();
        }
        let kind = self.b.ins().iconst(I64, kind as i64);
        let (pcv, n) = self.position(pc);
        let mut all = args.to_vec();
        all.extend_from_slice(&[kind, pcv, n]);
        debug_assert!(i.len == 2 || i.len == 4);
        let status = self.call(helper, &all);
        // MEM_HIT (0): the entry now grants the access, so the fast path goes on,
        // through a cold block of its own: a direct edge from the slow path would make
        // both edges into `fast` critical, and Cranelift would place the block
        // splitting the slow one on the hit path, one taken jump per access.
        let resume = self.b.create_block();
        self.b.set_cold_block(resume);
        self.exit_if_trap_or(status, resume);
        self.b.seal_block(resume);
        self.b.switch_to_block(resume);
        self.b.ins().jump(fast, &[]);
        self.b.seal_block(fast);
        self.b.switch_to_block(fast);
    }

    /// Before an access whose slow path may return: outside loops, the dirty
    /// registers are written back on the main line (once per block, as at its exit);
    /// in a region that loops they stay in host registers and the slow path stores
    /// them ([`Tx::probe`]).
    fn before_access(&mut self) {
        if !self.joined {
            self.write_back();
        }
    }

    /// `rd = load(x[rs1] + imm)` of `size` bytes, sign- or zero-extended.
    pub(super) fn load(&mut self, i: &Insn, pc: u64, size: u8, signed: bool) {
        let v = self.access_load(i, pc, size, signed, false);
        self.set(i.rd, v);
    }

    /// `store(x[rs1] + imm, x[rs2])` of `size` bytes.
    pub(super) fn store(&mut self, i: &Insn, pc: u64, size: u8) {
        let value = self.get(i.rs2);
        self.access_store(i, pc, size, value);
    }

    /// The value the load `i` (of `size` bytes at `x[rs1] + imm`, sign- or
    /// zero-extended) reads; the slow path writes it to `rd`, an f register when `fp`.
    pub(super) fn access_load(
        &mut self,
        i: &Insn,
        pc: u64,
        size: u8,
        signed: bool,
        fp: bool,
    ) -> Value {
        self.before_access();
        let (addr, entry) = self.address(i);
        let hit = self.hit(addr, entry, self.layout.l1.read, size);
        let kind = MemKind::pack(size, signed, fp, i.len, i.rd);
        self.probe(hit, Helper::Load, i, pc, kind, &[addr]);
        let host = self.host(addr, entry);
        let f = host_flags();
        match (size, signed) {
            (8, _) => self.b.ins().load(I64, f, host, 0),
            (1, false) => self.b.ins().uload8(I64, f, host, 0),
            (1, true) => self.b.ins().sload8(I64, f, host, 0),
            (2, false) => self.b.ins().uload16(I64, f, host, 0),
            (2, true) => self.b.ins().sload16(I64, f, host, 0),
            (_, false) => self.b.ins().uload32(f, host, 0),
            (_, true) => self.b.ins().sload32(f, host, 0),
        }
    }

    /// The store `i` of the low `size` bytes of `value` at `x[rs1] + imm`.
    pub(super) fn access_store(&mut self, i: &Insn, pc: u64, size: u8, value: Value) {
        self.before_access();
        let (addr, entry) = self.address(i);
        let hit = self.hit(addr, entry, self.layout.l1.write, size);
        // A store's kind names rs2 and whether it is FSW/FSD, for the transformed
        // instruction a trap writes to mtinst/htinst.
        let fp = matches!(i.op, Op::Fsw | Op::Fsd);
        let kind = MemKind::pack(size, false, fp, i.len, i.rs2);
        self.probe(hit, Helper::Store, i, pc, kind, &[addr, value]);
        let host = self.host(addr, entry);
        let f = host_flags();
        match size {
            1 => self.b.ins().istore8(f, value, host, 0),
            2 => self.b.ins().istore16(f, value, host, 0),
            4 => self.b.ins().istore32(f, value, host, 0),
            _ => self.b.ins().store(f, value, host, 0),
        };
    }

    /// The AMO `i` (`amo<op>.w/d rd, rs2, (rs1)`) of `size` bytes: the L1 write probe,
    /// then the read-modify-write on the host atomic, sequentially consistent as the
    /// interpreter's (Unpriv spec "Atomic Memory Operations"; aq and rl are implied).
    /// 32-bit results are sign-extended.
    pub(super) fn amo(&mut self, i: &Insn, pc: u64, size: u8, op: AtomicRmwOp) {
        let src = self.get(i.rs2);
        self.before_access();
        let (addr, entry) = self.address(i);
        let hit = self.hit(addr, entry, self.layout.l1.write, size);
        let kind = MemKind::pack(size, true, false, i.len, i.rd);
        let insn = self.b.ins().iconst(I64, i as *const Insn as i64);
        self.probe(hit, Helper::Amo, i, pc, kind, &[addr, insn]);
        let host = self.host(addr, entry);
        let f = host_flags();
        let old = if size == 4 {
            let v = self.b.ins().ireduce(I32, src);
            let old = self.b.ins().atomic_rmw(I32, f, op, host, v);
            self.sextend32(old)
        } else {
            self.b.ins().atomic_rmw(I64, f, op, host, src)
        };
        self.set(i.rd, old);
    }

    /// `cbo.zero (rs1)` (Zicboz): the 64-byte block holding `x[rs1]` (Rivet's
    /// cache-block size) zeroed through the L1 write entry, when the privilege may
    /// (M always; S with menvcfg.CBZE; U with senvcfg.CBZE too: Priv spec "Machine
    /// Environment Configuration Register"). Anything else (not enabled, a miss, a
    /// device) goes to the helper, which refills the entry or runs the instruction.
    /// False, with nothing emitted, when the layout gives no envcfg CSRs.
    pub(super) fn cbo_zero(&mut self, i: &Insn, pc: u64) -> bool {
        const CBZE: i64 = crate::arch::csr::menvcfg::CBZE as i64;
        use crate::arch::csr::num;
        let find = |num| {
            self.layout
                .csr_reads
                .iter()
                .find(|c| c.num == num)
                .map(|c| c.offset)
        };
        let (Some(menvcfg), Some(senvcfg)) = (find(num::MENVCFG), find(num::SENVCFG)) else {
            return false;
        };
        let base = self.get(i.rs1);
        self.before_access();
        let block = self.b.ins().band_imm_s(base, !63);
        let entry = self.entry(block);
        let hit = self.hit(block, entry, self.layout.l1.write, 8);
        let prv = self
            .b
            .ins()
            .uload8(I64, state_flags(), self.hart, self.layout.prv);
        let m = self.b.ins().load(I64, state_flags(), self.hart, menvcfg);
        let s = self.b.ins().load(I64, state_flags(), self.hart, senvcfg);
        // S needs M's bit; U needs both: (m & (s | S)) & CBZE with S = prv bit 0.
        let s_mode = self.b.ins().icmp_imm_s(IntCC::Equal, prv, 1);
        let s_mode = self.b.ins().uextend(I64, s_mode);
        let s_mode = self.b.ins().imul_imm_s(s_mode, CBZE);
        let lower = self.b.ins().bor(s, s_mode);
        let both = self.b.ins().band(m, lower);
        let enabled = self.b.ins().band_imm_s(both, CBZE);
        let m_mode = self.b.ins().icmp_imm_s(IntCC::Equal, prv, 3);
        let m_mode = self.b.ins().uextend(I64, m_mode);
        let allowed = self.b.ins().bor(enabled, m_mode);
        let allowed = self.b.ins().icmp_imm_s(IntCC::NotEqual, allowed, 0);
        // With V=1 henvcfg gates it too: the helper decides.
        let virt = self
            .b
            .ins()
            .uload8(I64, state_flags(), self.hart, self.layout.virt);
        let host = self.b.ins().icmp_imm_s(IntCC::Equal, virt, 0);
        let allowed = self.b.ins().band(allowed, host);
        let ok = self.b.ins().band(hit, allowed);
        let kind = MemKind::pack(8, false, false, i.len, 0);
        let insn = self.b.ins().iconst(I64, i as *const Insn as i64);
        self.probe(ok, Helper::Amo, i, pc, kind, &[block, insn]);
        let host = self.host(block, entry);
        let zero = self.b.ins().iconst(I64, 0);
        let f = host_flags();
        for k in 0..8 {
            self.b.ins().store(f, zero, host, 8 * k);
        }
        true
    }
}
