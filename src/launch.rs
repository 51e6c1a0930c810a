//! What the `rivet` subcommands do: assemble a board from the command line and run it,
//! or build reference guests.

use std::path::PathBuf;

use rivet_devices::power::PowerEvent;
use rivet_machines::isa::IsaConfig;
use rivet_machines::{Bios, MachineConfig};

use crate::cli::{BootArgs, EngineArg, ImageCommand, RunArgs, ScenarioArg};
use crate::runtime::{self, RunOptions};

/// `rivet run`: returns how the guest stopped, or a one-line error.
pub fn run(a: RunArgs) -> Result<PowerEvent, String> {
    let bios = match a.bios.as_deref() {
        None => Bios::Default,
        Some("none") => Bios::None,
        Some(path) => Bios::File(PathBuf::from(path)),
    };
    let kind = a.machine.kind;
    let dump_dtb = match (&a.dump_dtb, &a.machine.dump_dtb) {
        (Some(flag), Some(prop)) if flag != prop => {
            return Err(format!(
                "--dump-dtb {} and --machine dumpdtb={} name different files",
                flag.display(),
                prop.display()
            ))
        }
        (flag, prop) => flag.clone().or_else(|| prop.clone()),
    };
    if !a.drive.is_empty() {
        return Err("--drive: virtio block devices are not available yet".into());
    }
    let trace = match a.trace.as_deref() {
        None => false,
        Some("insn") => true,
        Some(other) => return Err(format!("--trace: unknown trace '{other}' (known: insn)")),
    };
    if a.lockstep && a.engine != EngineArg::Jit {
        return Err("--lockstep checks compiled code: it needs --engine jit".into());
    }
    // A reboot builds the machine again from the same files, as QEMU resets it.
    let config = || MachineConfig {
        kind,
        isa: a.cpu.clone(),
        aia: a.machine.aia,
        memory: a.memory,
        smp: a.smp as usize,
        bios: bios.clone(),
        kernel: a.kernel.clone(),
        initrd: a.initrd.clone(),
        append: a.append.clone(),
        dtb: a.dtb.clone(),
        console: Box::new(std::io::stdout()),
        ..MachineConfig::new(kind)
    };
    let mut board = rivet_machines::build(config()).map_err(|e| error_chain(&e))?;
    if let Some(path) = &dump_dtb {
        std::fs::write(path, &board.fdt)
            .map_err(|e| format!("cannot write device tree to {}: {e}", path.display()))?;
        // As QEMU's `-machine dumpdtb=FILE`: write the tree and stop.
        return Ok(PowerEvent::PowerOff);
    }
    let _raw = crate::console::RawMode::enable();
    let slot: crate::console::Slot = Default::default();
    crate::console::spawn_input(slot.clone());
    let result = loop {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) =
            board.uart.clone().map(|uart| crate::console::Target {
                uart,
                power: board.power.clone(),
            });
        let result = runtime::run(
            board,
            &RunOptions {
                stats: a.stats,
                trace,
                jit: a.engine == EngineArg::Jit,
                lockstep: a.lockstep,
                jit_threshold: a.jit_threshold,
                jit_sync: a.jit_sync,
                jit_cache_mib: a.jit_cache_mib,
            },
        );
        if result.event != PowerEvent::Reboot || a.no_reboot {
            break result;
        }
        board = rivet_machines::build(config()).map_err(|e| error_chain(&e))?;
    };
    drop(_raw);
    if a.stats {
        let secs = result.elapsed.as_secs_f64();
        eprintln!(
            "rivet: {} instructions in {:.3} s ({:.1} MIPS)",
            result.instructions,
            secs,
            result.instructions as f64 / secs / 1e6
        );
        let h = &result.harts;
        let t = &h.tlb;
        eprintln!(
            "rivet: tlb: {} walks ({} two-stage), {} L2 hits ({} two-stage), {} L1 fills, \
             {} L1 entries shared between address spaces",
            t.walks, t.guest_walks, t.l2_hits, t.guest_l2_hits, t.l1_fills, t.l1_shared
        );
        if h.guest_entries > 0 {
            eprintln!(
                "rivet: hypervisor: {} guest entries, {} exits; {} guest-page faults, {} \
                 virtual-instruction traps; {} hfence.vvma, {} hfence.gvma, {} guest \
                 sfence.vma",
                h.guest_entries,
                h.guest_exits,
                h.guest_page_faults,
                h.virtual_insns,
                h.hfence_vvma,
                h.hfence_gvma,
                h.guest_sfence
            );
        }
        if h.imsic_claims.iter().any(|&n| n > 0) {
            let [m, s, vs] = h.imsic_claims;
            eprintln!(
                "rivet: aia: {m} M-level, {s} S-level, {vs} guest-file interrupts claimed \
                 through *topei"
            );
        }
        let d = &result.dispatch;
        if let Some(j) = &result.jit {
            let ct = j.compile_time.as_secs_f64();
            let place = if a.jit_sync || a.lockstep {
                "while the harts waited"
            } else {
                "on compiler threads"
            };
            eprintln!(
                "rivet: jit: {} blocks ({} instructions) compiled in {:.3} s {place} ({:.1} \
                 us/block, {:.2} us/instruction, {:.1}% of the run's time); {} compiled \
                 runs entered from the dispatcher, {:.1}% of instructions retired in \
                 compiled code ({:.1}% interpreted while their code was being compiled); \
                 {} failures",
                j.blocks,
                j.insns,
                ct,
                ct * 1e6 / j.blocks.max(1) as f64,
                ct * 1e6 / j.insns.max(1) as f64,
                100.0 * ct / secs,
                d.compiled_runs,
                100.0 * result.instructions.saturating_sub(d.interpreted) as f64
                    / result.instructions.max(1) as f64,
                100.0 * d.queued as f64 / result.instructions.max(1) as f64,
                j.failures
            );
        }
        eprintln!(
            "rivet: dispatch: {} compiled-table hits, {} successors of the block before, \
             {} jump-cache hits, {} found by physical address, {} decoded; {} fence.i",
            d.fast, d.next, d.jump, d.map, d.decoded, d.fence_i
        );
        let f = &result.flushes;
        eprintln!(
            "rivet: code cache: {} decoded instructions held (budget {}); flushed {} times \
             for code space, {} for the block budget, {} for changed code",
            result.cached_insns,
            crate::engine::cache::BLOCK_BUDGET,
            f.code_full,
            f.block_budget,
            f.retired
        );
        if a.lockstep {
            eprintln!(
                "rivet: lockstep: {} blocks checked, {} unchecked (they write memory or \
                 touch devices)",
                d.checked, d.unchecked
            );
        }
    }
    Ok(result.event)
}

fn scenario(s: ScenarioArg) -> rivet_images::Scenario {
    match s {
        ScenarioArg::Boot => rivet_images::Scenario::Boot,
        ScenarioArg::Shell => rivet_images::Scenario::Shell,
        ScenarioArg::Nested => rivet_images::Scenario::Nested,
        ScenarioArg::Bench => rivet_images::Scenario::Bench,
    }
}

fn build_guest(
    s: ScenarioArg,
    mirror: Option<String>,
    out: Option<PathBuf>,
) -> Result<rivet_images::Guest, String> {
    let opts = rivet_images::BuildOptions {
        mirror,
        out,
        suite: "sid".into(),
        progress: true,
    };
    rivet_images::build(scenario(s), &opts).map_err(|e| error_chain(&e))
}

/// `rivet boot`: builds (or finds cached) a reference guest and boots it.
pub fn boot(a: BootArgs) -> Result<PowerEvent, String> {
    let g = build_guest(a.scenario, a.mirror, None)?;
    run(RunArgs {
        machine: a.machine,
        cpu: IsaConfig::default(),
        memory: a.memory,
        smp: a.smp,
        bios: Some(g.firmware.display().to_string()),
        kernel: Some(g.kernel),
        initrd: Some(g.initrd),
        append: Some(g.append),
        dtb: None,
        dump_dtb: None,
        drive: Vec::new(),
        trace: None,
        stats: a.stats,
        no_reboot: false,
        engine: EngineArg::Jit,
        lockstep: false,
        jit_threshold: crate::engine::DEFAULT_THRESHOLD,
        jit_sync: false,
        jit_cache_mib: crate::cli::DEFAULT_JIT_CACHE_MIB,
    })
}

/// `rivet image ...`
pub fn image(c: ImageCommand) -> Result<(), String> {
    match c {
        ImageCommand::Build {
            scenario,
            out,
            mirror,
        } => {
            let g = build_guest(scenario, mirror, out)?;
            println!("firmware {}", g.firmware.display());
            println!("kernel {}", g.kernel.display());
            println!("initrd {}", g.initrd.display());
            println!("append {}", g.append);
            Ok(())
        }
    }
}

/// An error and its sources on one line: "what failed: why".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
