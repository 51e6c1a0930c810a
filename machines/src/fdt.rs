//! The device trees Rivet hands to firmware and kernels, built from the machine's actual
//! configuration (hart count, RAM, ISA, command line, initrd).
//!
//! The `virt` tree has the shape of QEMU's virt board so that unmodified OpenSBI and
//! Linux find their devices the same way; the `spike` tree has the shape of Spike's.
//! Bindings: Linux `Documentation/devicetree/bindings/riscv/{cpus,extensions}.yaml`,
//! `interrupt-controller/sifive,plic-1.0.0.yaml`, `timer/sifive,clint.yaml`,
//! `interrupt-controller/riscv,aplic.yaml`, `interrupt-controller/riscv,imsics.yaml`.

use crate::config::Aia;
use crate::dtb::{Dtb, DtbError, Node};
use crate::isa::{Ext, IsaConfig};
use crate::virt::map;
use rivet_devices::clock::TIMEBASE_HZ;
use rivet_devices::imsic::{self, Imsic};

/// What the tree describes beyond the fixed memory map.
#[derive(Debug, Clone, Default)]
pub struct FdtParams<'a> {
    pub harts: usize,
    pub ram_base: u64,
    pub ram_size: u64,
    pub isa: IsaConfig,
    /// The interrupt controllers (virt).
    pub aia: Aia,
    pub bootargs: Option<&'a str>,
    /// `[start, end)` of the initrd in guest memory.
    pub initrd: Option<(u64, u64)>,
    /// Entropy for the guest's RNG before it has its own (`/chosen/rng-seed`).
    pub rng_seed: Option<&'a [u8]>,
}

// Builders that keep the tree code close to the .dts it produces.
impl Node {
    fn str(mut self, name: &str, value: &str) -> Self {
        self.set_prop(name, [value.as_bytes(), &[0]].concat());
        self
    }

    fn strs(mut self, name: &str, values: &[&str]) -> Self {
        let mut v = Vec::new();
        for s in values {
            v.extend_from_slice(s.as_bytes());
            v.push(0);
        }
        self.set_prop(name, v);
        self
    }

    fn u32(self, name: &str, value: u32) -> Self {
        self.cells(name, &[value])
    }

    fn cells(mut self, name: &str, cells: &[u32]) -> Self {
        self.set_prop(name, cells.iter().flat_map(|c| c.to_be_bytes()).collect());
        self
    }

    fn null(mut self, name: &str) -> Self {
        self.set_prop(name, Vec::new());
        self
    }

    fn bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.set_prop(name, value.to_vec());
        self
    }

    /// `reg` with two address and two size cells.
    fn reg(self, base: u64, size: u64) -> Self {
        self.cells("reg", &cells64(&[base, size]))
    }

    fn add(mut self, node: Node) -> Self {
        self.children.push(node);
        self
    }
}

fn cells64(v: &[u64]) -> Vec<u32> {
    v.iter()
        .flat_map(|&x| [(x >> 32) as u32, x as u32])
        .collect()
}

/// Phandles: fixed ones first, then two per hart (cpu node, its interrupt controller).
/// Devices' `interrupt-parent` is [`PHANDLE_IRQCHIP`]: the PLIC, or the S-level APLIC
/// domain with the AIA.
const PHANDLE_IRQCHIP: u32 = 1;
const PHANDLE_TEST: u32 = 2;
const PHANDLE_APLIC_M: u32 = 3;
const PHANDLE_IMSIC_M: u32 = 4;
const PHANDLE_IMSIC_S: u32 = 5;
fn phandle_cpu(hart: usize) -> u32 {
    6 + 2 * hart as u32
}
fn phandle_intc(hart: usize) -> u32 {
    7 + 2 * hart as u32
}

/// `/cpus`: one node per hart describing exactly the ISA the harts implement.
fn cpus(harts: usize, isa: &IsaConfig) -> Node {
    let exts: Vec<&str> = isa.extensions().map(Ext::name).collect();
    let mut cpus = Node::new("cpus")
        .u32("#address-cells", 1)
        .u32("#size-cells", 0)
        .u32("timebase-frequency", TIMEBASE_HZ as u32);
    let mut cluster = Node::new("cluster0");
    for hart in 0..harts {
        let mut cpu = Node::new(&format!("cpu@{hart:x}"))
            .u32("phandle", phandle_cpu(hart))
            .str("device_type", "cpu")
            .u32("reg", hart as u32)
            .str("status", "okay")
            .str("compatible", "riscv");
        for (ext, prop) in [
            (Ext::Zicbom, "riscv,cbom-block-size"),
            (Ext::Zicbop, "riscv,cbop-block-size"),
            (Ext::Zicboz, "riscv,cboz-block-size"),
        ] {
            if isa.has(ext) {
                cpu = cpu.u32(prop, isa.cache_block_size);
            }
        }
        cpu = cpu
            .strs("riscv,isa-extensions", &exts)
            .str("riscv,isa-base", "rv64i")
            .str("riscv,isa", &isa.isa_string())
            .str("mmu-type", isa.mmu.fdt_name())
            .add(
                Node::new("interrupt-controller")
                    .u32("#address-cells", 0)
                    .u32("#interrupt-cells", 1)
                    .null("interrupt-controller")
                    .str("compatible", "riscv,cpu-intc")
                    .u32("phandle", phandle_intc(hart)),
            );
        cpus = cpus.add(cpu);
        cluster = cluster.add(Node::new(&format!("core{hart}")).u32("cpu", phandle_cpu(hart)));
    }
    cpus.add(Node::new("cpu-map").add(cluster))
}

fn memory(base: u64, size: u64) -> Node {
    Node::new(&format!("memory@{base:x}"))
        .str("device_type", "memory")
        .reg(base, size)
}

fn chosen(p: &FdtParams, stdout: Option<&str>) -> Node {
    let mut n = Node::new("chosen");
    if let Some(args) = p.bootargs {
        n = n.str("bootargs", args);
    }
    if let Some(path) = stdout {
        n = n.str("stdout-path", path);
    }
    if let Some((start, end)) = p.initrd {
        n = n
            .cells("linux,initrd-start", &cells64(&[start]))
            .cells("linux,initrd-end", &cells64(&[end]));
    }
    if let Some(seed) = p.rng_seed {
        n = n.bytes("rng-seed", seed);
    }
    n
}

/// `interrupts-extended` listing, for every hart, its intc with each of `irqs`.
fn per_hart_irqs(harts: usize, irqs: &[u32]) -> Vec<u32> {
    (0..harts)
        .flat_map(|h| irqs.iter().flat_map(move |&i| [phandle_intc(h), i]))
        .collect()
}

/// `mip` cause numbers (Priv spec 3.1.9).
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;

/// A device's `interrupts`: one cell with the PLIC; with the APLIC, the source and
/// its trigger (4 = level high).
fn device_irq(node: Node, aia: Aia, irq: u32) -> Node {
    let node = node.u32("interrupt-parent", PHANDLE_IRQCHIP);
    match aia {
        Aia::None => node.u32("interrupts", irq),
        Aia::Aplic | Aia::AplicImsic { .. } => node.cells("interrupts", &[irq, 4]),
    }
}

/// The interrupt controllers of the virt board as QEMU describes them (hw/riscv/virt.c).
fn irqchips(p: &FdtParams) -> Vec<Node> {
    let aplic = |w: map::Window, phandle: u32| {
        Node::new(&format!("interrupt-controller@{:x}", w.base))
            .u32("phandle", phandle)
            .u32("riscv,num-sources", map::AIA_SOURCES)
            .reg(w.base, w.size)
    };
    let aplic_tail = |n: Node| {
        n.null("interrupt-controller")
            .u32("#interrupt-cells", 2)
            .u32("#address-cells", 0)
            .strs("compatible", &["qemu,aplic", "riscv,aplic"])
    };
    // The root domain delegates every source to the supervisor-level child, which is
    // where Linux finds them (AIA spec, "Interrupt domains"; the binding's
    // `riscv,delegation`, whose older spelling QEMU also writes).
    let delegate = |n: Node| {
        let d = [PHANDLE_IRQCHIP, 1, map::AIA_SOURCES];
        n.cells("riscv,delegate", &d)
            .cells("riscv,delegation", &d)
            .u32("riscv,children", PHANDLE_IRQCHIP)
    };
    match p.aia {
        Aia::None => vec![Node::new(&format!("plic@{:x}", map::PLIC.base))
            .u32("phandle", PHANDLE_IRQCHIP)
            .u32("riscv,ndev", map::PLIC_SOURCES - 1)
            .reg(map::PLIC.base, map::PLIC.size)
            .cells(
                "interrupts-extended",
                &per_hart_irqs(p.harts, &[IRQ_M_EXT, IRQ_S_EXT]),
            )
            .null("interrupt-controller")
            .strs("compatible", &["sifive,plic-1.0.0", "riscv,plic0"])
            .u32("#address-cells", 0)
            .u32("#interrupt-cells", 1)],
        Aia::Aplic => vec![
            aplic_tail(
                aplic(map::APLIC_S, PHANDLE_IRQCHIP)
                    .cells("interrupts-extended", &per_hart_irqs(p.harts, &[IRQ_S_EXT])),
            ),
            aplic_tail(
                delegate(aplic(map::APLIC_M, PHANDLE_APLIC_M))
                    .cells("interrupts-extended", &per_hart_irqs(p.harts, &[IRQ_M_EXT])),
            ),
        ],
        Aia::AplicImsic { guests } => {
            let (m_size, s_size) = Imsic::window_sizes(p.harts, guests);
            let imsic = |base: u64, size: u64, phandle: u32, irq: u32| {
                Node::new(&format!("interrupt-controller@{base:x}"))
                    .u32("phandle", phandle)
                    .u32("riscv,num-ids", imsic::NUM_IDS)
                    .reg(base, size)
                    .cells("interrupts-extended", &per_hart_irqs(p.harts, &[irq]))
                    .null("msi-controller")
                    .null("interrupt-controller")
                    .u32("#interrupt-cells", 0)
                    // Not in QEMU's tree; dtc wants it of an interrupt provider.
                    .u32("#address-cells", 0)
                    .strs("compatible", &["qemu,imsics", "riscv,imsics"])
            };
            let mut s_imsic = imsic(map::IMSIC_S_BASE, s_size, PHANDLE_IMSIC_S, IRQ_S_EXT);
            if guests > 0 {
                s_imsic = s_imsic.u32("riscv,guest-index-bits", Imsic::guest_bits(guests));
            }
            vec![
                aplic_tail(aplic(map::APLIC_S, PHANDLE_IRQCHIP).u32("msi-parent", PHANDLE_IMSIC_S)),
                aplic_tail(
                    delegate(aplic(map::APLIC_M, PHANDLE_APLIC_M))
                        .u32("msi-parent", PHANDLE_IMSIC_M),
                ),
                s_imsic,
                imsic(map::IMSIC_M_BASE, m_size, PHANDLE_IMSIC_M, IRQ_M_EXT),
            ]
        }
    }
}

/// The virt board's tree.
pub fn virt(p: &FdtParams) -> Result<Vec<u8>, DtbError> {
    let uart_path = format!("/soc/serial@{:x}", map::UART0.base);
    let mut soc = Node::new("soc")
        .u32("#address-cells", 2)
        .u32("#size-cells", 2)
        .str("compatible", "simple-bus")
        .null("ranges")
        .add(
            device_irq(
                Node::new(&format!("rtc@{:x}", map::RTC.base)),
                p.aia,
                map::RTC_IRQ,
            )
            .reg(map::RTC.base, map::RTC.size)
            .str("compatible", "google,goldfish-rtc"),
        )
        .add(
            device_irq(
                Node::new(&format!("serial@{:x}", map::UART0.base)),
                p.aia,
                map::UART0_IRQ,
            )
            .u32("clock-frequency", map::UART_CLOCK_HZ)
            .reg(map::UART0.base, map::UART0.size)
            .str("compatible", "ns16550a"),
        )
        .add(
            Node::new(&format!("test@{:x}", map::TEST.base))
                .u32("phandle", PHANDLE_TEST)
                .reg(map::TEST.base, map::TEST.size)
                .strs("compatible", &["sifive,test1", "sifive,test0", "syscon"]),
        );
    for slot in 0..map::VIRTIO_COUNT {
        let base = map::virtio_base(slot);
        soc = soc.add(
            device_irq(
                Node::new(&format!("virtio_mmio@{base:x}")),
                p.aia,
                map::virtio_irq(slot),
            )
            .reg(base, map::VIRTIO_SIZE)
            .str("compatible", "virtio,mmio"),
        );
    }
    for chip in irqchips(p) {
        soc = soc.add(chip);
    }
    soc = soc.add(
        Node::new(&format!("clint@{:x}", map::CLINT.base))
            .cells(
                "interrupts-extended",
                &per_hart_irqs(p.harts, &[IRQ_M_SOFT, IRQ_M_TIMER]),
            )
            .reg(map::CLINT.base, map::CLINT.size)
            .strs("compatible", &["sifive,clint0", "riscv,clint0"]),
    );

    let syscon = |name: &str, compatible: &str, value: u32| {
        Node::new(name)
            .u32("value", value)
            .u32("offset", 0)
            .u32("regmap", PHANDLE_TEST)
            .str("compatible", compatible)
    };
    let root = Node::new("")
        .u32("#address-cells", 2)
        .u32("#size-cells", 2)
        .str("compatible", "riscv-virtio")
        .str("model", "riscv-virtio,rivet")
        .add(syscon("poweroff", "syscon-poweroff", map::TEST_POWEROFF))
        .add(syscon("reboot", "syscon-reboot", map::TEST_REBOOT))
        .add(memory(p.ram_base, p.ram_size))
        .add(cpus(p.harts, &p.isa))
        .add(Node::new("aliases").str("serial0", &uart_path))
        .add(chosen(p, Some(&uart_path)))
        .add(soc);
    Dtb {
        root,
        reserved: Vec::new(),
        boot_cpuid_phys: 0,
    }
    .to_bytes()
}

/// The spike board's tree: harts, RAM, CLINT and the HTIF.
pub fn spike(p: &FdtParams) -> Result<Vec<u8>, DtbError> {
    use crate::spike::map as smap;
    let soc = Node::new("soc")
        .u32("#address-cells", 2)
        .u32("#size-cells", 2)
        .strs("compatible", &["ucb,spike-bare-soc", "simple-bus"])
        .null("ranges")
        .add(
            Node::new(&format!("clint@{:x}", smap::CLINT.base))
                .strs("compatible", &["sifive,clint0", "riscv,clint0"])
                .cells(
                    "interrupts-extended",
                    &per_hart_irqs(p.harts, &[IRQ_M_SOFT, IRQ_M_TIMER]),
                )
                .reg(smap::CLINT.base, smap::CLINT.size),
        );
    let root = Node::new("")
        .u32("#address-cells", 2)
        .u32("#size-cells", 2)
        .str("compatible", "ucb,spike-bare-dev")
        .str("model", "ucb,spike-bare")
        .add(chosen(p, None))
        .add(cpus(p.harts, &p.isa))
        .add(memory(p.ram_base, p.ram_size))
        .add(soc)
        .add(Node::new("htif").str("compatible", "ucb,htif0"));
    Dtb {
        root,
        reserved: Vec::new(),
        boot_cpuid_phys: 0,
    }
    .to_bytes()
}

/// Sets `/chosen` bootargs and initrd range in a tree the user supplied, as QEMU does
/// for `-dtb` with `-append`/`-initrd`.
pub fn patch_chosen(
    blob: &[u8],
    bootargs: Option<&str>,
    initrd: Option<(u64, u64)>,
) -> Result<Vec<u8>, DtbError> {
    let mut dtb = Dtb::parse(blob)?;
    if bootargs.is_none() && initrd.is_none() {
        return Ok(blob.to_vec());
    }
    let chosen = dtb.root.child_mut_or_insert("chosen");
    if let Some(args) = bootargs {
        chosen.set_prop("bootargs", [args.as_bytes(), &[0]].concat());
    }
    if let Some((start, end)) = initrd {
        chosen.set_prop("linux,initrd-start", start.to_be_bytes().to_vec());
        chosen.set_prop("linux,initrd-end", end.to_be_bytes().to_vec());
    }
    dtb.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn params(harts: usize) -> FdtParams<'static> {
        FdtParams {
            harts,
            ram_base: 0x8000_0000,
            ram_size: 256 << 20,
            isa: IsaConfig::all(),
            bootargs: Some("console=ttyS0 quiet"),
            initrd: Some((0x8820_0000, 0x8830_0000)),
            rng_seed: Some(&[7; 32]),
            aia: Aia::None,
        }
    }

    /// Decompiles with dtc; `None` (after saying so loudly) when dtc is missing.
    fn dtc(blob: &[u8]) -> Option<(String, String)> {
        let child = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let why = format!("dtc not runnable ({e}); install device-tree-compiler");
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("SKIPPED: {why}");
                return None;
            }
        };
        child.stdin.take().unwrap().write_all(blob).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "dtc failed: {out:?}");
        Some((
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        ))
    }

    #[test]
    fn virt_tree_decompiles_cleanly() {
        for harts in [1, 4, 512] {
            let blob = virt(&params(harts)).unwrap();
            if let Some((dts, warnings)) = dtc(&blob) {
                assert!(warnings.is_empty(), "dtc warnings:\n{warnings}");
                assert!(dts.contains("serial@10000000 {"), "{dts}");
                assert!(dts.contains("compatible = \"ns16550a\""));
                assert!(dts.contains(&format!("cpu@{:x} {{", harts - 1)));
            }
        }
        let blob = spike(&params(2)).unwrap();
        if let Some((dts, warnings)) = dtc(&blob) {
            assert!(warnings.is_empty(), "dtc warnings:\n{warnings}");
            assert!(dts.contains("compatible = \"ucb,htif0\""), "{dts}");
        }
    }

    #[test]
    fn aia_trees_decompile_cleanly() {
        for aia in [
            Aia::Aplic,
            Aia::AplicImsic { guests: 0 },
            Aia::AplicImsic { guests: 5 },
            Aia::AplicImsic { guests: 7 },
        ] {
            for harts in [1, 4, 512] {
                let mut p = params(harts);
                p.aia = aia;
                let blob = virt(&p).unwrap();
                if let Some((dts, warnings)) = dtc(&blob) {
                    assert!(warnings.is_empty(), "{aia:?}: dtc warnings:\n{warnings}");
                    assert!(dts.contains("riscv,aplic"), "{dts}");
                    assert!(!dts.contains("plic@"), "{dts}");
                }
            }
        }
    }

    /// The nodes of QEMU's `-M virt,aia=aplic-imsic,aia-guests=5 -smp 2` tree.
    #[test]
    fn aplic_imsic_tree_properties() {
        let mut p = params(2);
        p.aia = Aia::AplicImsic { guests: 5 };
        let t = Dtb::parse(&virt(&p).unwrap()).unwrap();
        let intc = |h: usize| {
            t.node(&format!("/cpus/cpu@{h}/interrupt-controller"))
                .unwrap()
                .prop_u32("phandle")
                .unwrap()
        };
        let (i0, i1) = (intc(0), intc(1));
        let exts = t
            .node("/cpus/cpu@1")
            .unwrap()
            .prop_strings("riscv,isa-extensions")
            .unwrap();
        assert!(
            !exts.iter().any(|e| e == "smaia"),
            "the board adds it, not fdt"
        );

        let imsic_m = t.node("/soc/interrupt-controller@24000000").unwrap();
        let imsic_s = t.node("/soc/interrupt-controller@28000000").unwrap();
        assert_eq!(
            imsic_m.prop_cells("reg"),
            Some(vec![0, 0x2400_0000, 0, 0x2000])
        );
        assert_eq!(
            imsic_s.prop_cells("reg"),
            Some(vec![0, 0x2800_0000, 0, 0x10000])
        );
        assert_eq!(
            imsic_m.prop_cells("interrupts-extended"),
            Some(vec![i0, 11, i1, 11])
        );
        assert_eq!(
            imsic_s.prop_cells("interrupts-extended"),
            Some(vec![i0, 9, i1, 9])
        );
        assert_eq!(imsic_s.prop_u32("riscv,guest-index-bits"), Some(3));
        assert_eq!(imsic_m.prop("riscv,guest-index-bits"), None);
        for n in [imsic_m, imsic_s] {
            assert_eq!(n.prop_u32("riscv,num-ids"), Some(255));
            assert_eq!(n.prop_u32("#interrupt-cells"), Some(0));
            assert!(n.prop("msi-controller").is_some());
            assert_eq!(
                n.prop_strings("compatible"),
                Some(vec!["qemu,imsics".into(), "riscv,imsics".into()])
            );
        }

        let aplic_m = t.node("/soc/interrupt-controller@c000000").unwrap();
        let aplic_s = t.node("/soc/interrupt-controller@d000000").unwrap();
        let s_ph = aplic_s.prop_u32("phandle").unwrap();
        assert_eq!(aplic_m.prop_u32("msi-parent"), imsic_m.prop_u32("phandle"));
        assert_eq!(aplic_s.prop_u32("msi-parent"), imsic_s.prop_u32("phandle"));
        assert_eq!(aplic_m.prop_u32("riscv,children"), Some(s_ph));
        assert_eq!(
            aplic_m.prop_cells("riscv,delegate"),
            Some(vec![s_ph, 1, 96])
        );
        for n in [aplic_m, aplic_s] {
            assert_eq!(n.prop_u32("riscv,num-sources"), Some(96));
            assert_eq!(n.prop_u32("#interrupt-cells"), Some(2));
            assert_eq!(n.prop_cells("reg").unwrap()[3], 0x8000);
            assert!(n.prop("interrupts-extended").is_none());
        }

        let uart = t.node("/soc/serial@10000000").unwrap();
        assert_eq!(uart.prop_u32("interrupt-parent"), Some(s_ph));
        assert_eq!(uart.prop_cells("interrupts"), Some(vec![10, 4]));
        assert_eq!(
            t.node("/soc/virtio_mmio@10008000")
                .unwrap()
                .prop_cells("interrupts"),
            Some(vec![8, 4])
        );
    }

    /// `aia=aplic`: both domains signal the harts directly, M on MEIP and S on SEIP.
    #[test]
    fn aplic_tree_properties() {
        let mut p = params(2);
        p.aia = Aia::Aplic;
        let t = Dtb::parse(&virt(&p).unwrap()).unwrap();
        let intc = |h: usize| {
            t.node(&format!("/cpus/cpu@{h}/interrupt-controller"))
                .unwrap()
                .prop_u32("phandle")
                .unwrap()
        };
        let (i0, i1) = (intc(0), intc(1));
        let aplic_m = t.node("/soc/interrupt-controller@c000000").unwrap();
        let aplic_s = t.node("/soc/interrupt-controller@d000000").unwrap();
        assert_eq!(
            aplic_m.prop_cells("interrupts-extended"),
            Some(vec![i0, 11, i1, 11])
        );
        assert_eq!(
            aplic_s.prop_cells("interrupts-extended"),
            Some(vec![i0, 9, i1, 9])
        );
        assert!(aplic_m.prop("msi-parent").is_none());
        assert!(t.node("/soc/interrupt-controller@28000000").is_none());
        assert_eq!(
            t.node("/soc/rtc@101000").unwrap().prop_cells("interrupts"),
            Some(vec![11, 4])
        );
    }

    #[test]
    fn virt_tree_properties() {
        let blob = virt(&params(2)).unwrap();
        let t = Dtb::parse(&blob).unwrap();
        let cpu1 = t.node("/cpus/cpu@1").unwrap();
        assert_eq!(cpu1.prop_u32("reg"), Some(1));
        assert_eq!(cpu1.prop_str("mmu-type").as_deref(), Some("riscv,sv57"));
        let exts = cpu1.prop_strings("riscv,isa-extensions").unwrap();
        for e in [
            "i", "m", "a", "f", "d", "c", "h", "zicsr", "zicboz", "sstc", "svpbmt",
        ] {
            assert!(exts.iter().any(|x| x == e), "{e} missing from {exts:?}");
        }
        assert_eq!(cpu1.prop_u32("riscv,cboz-block-size"), Some(64));
        let intc1 = cpu1.child("interrupt-controller").unwrap();
        let intc1_ph = intc1.prop_u32("phandle").unwrap();
        assert_eq!(
            t.node("/cpus").unwrap().prop_u32("timebase-frequency"),
            Some(10_000_000)
        );
        assert_eq!(
            t.node("/cpus/cpu-map/cluster0/core1")
                .unwrap()
                .prop_u32("cpu"),
            cpu1.prop_u32("phandle")
        );

        let plic = t.node("/soc/plic@c000000").unwrap();
        let ie = plic.prop_cells("interrupts-extended").unwrap();
        assert_eq!(ie.len(), 8);
        assert_eq!(&ie[4..], &[intc1_ph, 11, intc1_ph, 9]);
        assert_eq!(plic.prop_u32("riscv,ndev"), Some(95));
        let clint = t.node("/soc/clint@2000000").unwrap();
        assert_eq!(
            &clint.prop_cells("interrupts-extended").unwrap()[4..],
            &[intc1_ph, 3, intc1_ph, 7]
        );
        assert_eq!(
            clint.prop_cells("reg"),
            Some(vec![0, 0x0200_0000, 0, 0x10000])
        );

        let uart = t.node("/soc/serial@10000000").unwrap();
        assert_eq!(uart.prop_u32("interrupts"), Some(10));
        assert_eq!(uart.prop_u32("interrupt-parent"), plic.prop_u32("phandle"));
        assert_eq!(uart.prop_u32("clock-frequency"), Some(3_686_400));
        assert_eq!(
            t.node("/soc/rtc@101000").unwrap().prop_u32("interrupts"),
            Some(11)
        );
        for slot in 1..=8u32 {
            let n = t
                .node(&format!(
                    "/soc/virtio_mmio@{:x}",
                    0x1000_0000 + slot * 0x1000
                ))
                .unwrap();
            assert_eq!(n.prop_u32("interrupts"), Some(slot));
        }
        let test = t.node("/soc/test@100000").unwrap();
        let off = t.node("/poweroff").unwrap();
        assert_eq!(off.prop_u32("regmap"), test.prop_u32("phandle"));
        assert_eq!(off.prop_u32("value"), Some(0x5555));
        assert_eq!(t.node("/reboot").unwrap().prop_u32("value"), Some(0x7777));

        let chosen = t.node("/chosen").unwrap();
        assert_eq!(
            chosen.prop_str("stdout-path").as_deref(),
            Some("/soc/serial@10000000")
        );
        assert_eq!(
            chosen.prop_str("bootargs").as_deref(),
            Some("console=ttyS0 quiet")
        );
        assert_eq!(
            chosen.prop("linux,initrd-start"),
            Some(&0x8820_0000u64.to_be_bytes()[..])
        );
        assert_eq!(
            chosen.prop("linux,initrd-end"),
            Some(&0x8830_0000u64.to_be_bytes()[..])
        );
        assert_eq!(chosen.prop("rng-seed"), Some(&[7u8; 32][..]));
        assert_eq!(
            t.node("/memory@80000000").unwrap().prop_cells("reg"),
            Some(vec![0, 0x8000_0000, 0, 0x1000_0000])
        );
    }

    #[test]
    fn tree_follows_isa_config() {
        let mut p = params(1);
        p.isa.disable_named("h,zicboz,zicbom,zicbop").unwrap();
        p.isa.mmu = crate::isa::MmuType::Sv39;
        p.initrd = None;
        p.bootargs = None;
        let t = Dtb::parse(&virt(&p).unwrap()).unwrap();
        let cpu = t.node("/cpus/cpu@0").unwrap();
        let exts = cpu.prop_strings("riscv,isa-extensions").unwrap();
        assert!(!exts.iter().any(|e| e == "h" || e.starts_with("zicbo")));
        assert!(cpu.prop("riscv,cboz-block-size").is_none());
        assert!(cpu
            .prop_str("riscv,isa")
            .unwrap()
            .starts_with("rv64imafdc_"));
        assert_eq!(cpu.prop_str("mmu-type").as_deref(), Some("riscv,sv39"));
        let chosen = t.node("/chosen").unwrap();
        assert!(chosen.prop("bootargs").is_none() && chosen.prop("linux,initrd-start").is_none());
    }

    #[test]
    fn patching_a_user_tree() {
        let mut p = params(1);
        p.bootargs = None;
        p.initrd = None;
        let blob = virt(&p).unwrap();
        assert_eq!(patch_chosen(&blob, None, None).unwrap(), blob);
        let patched = patch_chosen(
            &blob,
            Some("root=/dev/vda"),
            Some((0x9000_0000, 0x9000_1000)),
        )
        .unwrap();
        let t = Dtb::parse(&patched).unwrap();
        let c = t.node("/chosen").unwrap();
        assert_eq!(c.prop_str("bootargs").as_deref(), Some("root=/dev/vda"));
        assert_eq!(
            c.prop("linux,initrd-end"),
            Some(&0x9000_1000u64.to_be_bytes()[..])
        );
        assert!(patch_chosen(b"not a dtb at all, definitely", Some("x"), None).is_err());
    }
}
