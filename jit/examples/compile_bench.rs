//! Replays the compiles of a real run: reads regions recorded with
//! `RIVET_JIT_RECORD=FILE rivet run ...` and compiles them all again, printing the
//! compile time and the size of the code (Cranelift IR, host bytes) per region and per
//! guest instruction. Compile cost is what decides how soon hot code leaves the
//! interpreter; this measures it apart from everything else a run does.
//!
//! ```text
//! cargo run --release -p rivet-jit --example compile_bench -- FILE [ROUNDS] [DUMP-PC]
//! ```
//!
//! With `DUMP-PC` (hex), the host code of the regions starting there is printed.

use std::time::Instant;

use rivet_jit::backend::{
    link_cells_for, parse_region, Compiler, Entry, FastLayout, Helpers, L1Layout, LinkCell, Member,
    StateLayout,
};
use rivet_jit::frontend::Insn;

/// Never called: the code is compiled, not run.
unsafe extern "C" fn load(_: *mut u8, _: u64, _: u64, _: u64, _: u64) -> u64 {
    unreachable!()
}
unsafe extern "C" fn store(_: *mut u8, _: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    unreachable!()
}
unsafe extern "C" fn amo(_: *mut u8, _: u64, _: *const Insn, _: u64, _: u64, _: u64) -> u64 {
    unreachable!()
}
unsafe extern "C" fn exec_one(_: *mut u8, _: *const Insn, _: u64) -> u64 {
    unreachable!()
}

/// A layout of the runtime's shape (the offsets only change immediates).
fn layout() -> StateLayout {
    StateLayout {
        x: 0,
        pc: 512,
        instret: 520,
        l1_data: 528,
        l1_exec: 536,
        fast_table: 544,
        chain_key: 552,
        last_exit: 560,
        helper_status: 568,
        prv: 844,
        virt: 845,
        csr_reads: &[],
        f: 576,
        mstatus: 832,
        vsstatus: 848,
        fflags: 840,
        frm: 841,
        fast: FastLayout {
            index_bits: 12,
            entry_shift: 5,
            pc: 0,
            host: 8,
            epoch: 16,
            f: 24,
        },
        l1: L1Layout {
            index_bits: 10,
            entry_shift: 5,
            page_shift: 12,
            read: 0,
            write: 8,
            exec: 16,
            addend: 24,
            tag_mask: [1u64, 2, 4, 8].map(|s| !0xfff | (s - 1)),
        },
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: compile_bench FILE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    let dump_pc = args.next().and_then(|p| u64::from_str_radix(&p, 16).ok());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("compile_bench: cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let regions: Vec<Vec<(u64, Vec<Insn>)>> = text.lines().filter_map(parse_region).collect();
    let helpers = Helpers {
        load,
        store,
        amo,
        exec_one,
    };
    let entry = Entry::new(&layout(), &helpers).expect("a Cranelift host");
    let mut compiler = Compiler::new(layout(), entry.thunks(), 1 << 30).expect("a Cranelift host");
    compiler.loops = true;
    let cells: Vec<Vec<LinkCell>> = regions
        .iter()
        .map(|r| {
            (0..link_cells_for(r.len()))
                .map(|_| LinkCell::new(0))
                .collect()
        })
        .collect();
    let guest: usize = regions
        .iter()
        .flat_map(|r| r.iter().map(|m| m.1.len()))
        .sum();
    let (mut ir, mut blocks, mut bytes) = (0, 0, 0);
    let t = Instant::now();
    for round in 0..rounds {
        for (r, cells) in regions.iter().zip(&cells) {
            let members: Vec<Member> = r
                .iter()
                .map(|(pc, insns)| Member { pc: *pc, insns })
                .collect();
            compiler.dump = round == 0 && Some(r[0].0) == dump_pc;
            if compiler.dump {
                for (pc, insns) in r {
                    let mut at = *pc;
                    for i in insns {
                        println!("  {at:x}: {}", rivet_jit::frontend::disasm(i, at));
                        at += u64::from(i.len);
                    }
                    println!();
                }
            }
            if let Err(e) = compiler.compile_region(&members, Some(cells)) {
                eprintln!("compile_bench: {e}");
                std::process::exit(1);
            }
            if round == 0 {
                let s = compiler.last_stats();
                ir += s.ir_insts;
                blocks += s.ir_blocks;
                bytes += s.code_bytes;
            }
        }
        // SAFETY: nothing runs the code.
        unsafe { compiler.flush() };
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let n = regions.len().max(1) as f64;
    let g = guest.max(1) as f64;
    println!(
        "{} regions, {} guest instructions: {:.1} us/region, {:.2} us/instruction; \
         {:.1} IR instructions and {:.1} IR blocks per guest instruction, {:.1} host \
         bytes per guest instruction",
        regions.len(),
        guest,
        us / n,
        us / g,
        ir as f64 / g,
        blocks as f64 / g,
        bytes as f64 / g,
    );
}
