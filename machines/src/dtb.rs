//! A small reader for flattened device trees (DTB), and re-emission through vm-fdt.
//!
//! Rivet writes its own trees with vm-fdt; this reader exists to patch `/chosen` in a
//! tree the user supplies with `--dtb` (bootargs, initrd) and to inspect trees in tests.
//! A DTB from the user is untrusted input: every offset is bounds-checked and nesting is
//! limited, so a corrupt file gives an error, never a panic.
//!
//! Format: Devicetree Specification v0.4, chapter 5 ("Flattened Devicetree (DTB)
//! Format").

use vm_fdt::{FdtReserveEntry, FdtWriter};

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Linux's limit (`FDT_MAX_DEPTH`); also vm-fdt's.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum DtbError {
    #[error("Not a device tree blob (bad magic {0:#x})")]
    Magic(u32),
    #[error("Device tree blob is truncated or has an offset outside the blob")]
    Truncated,
    #[error("Device tree blob version {0} is too old (need 16 or later)")]
    Version(u32),
    #[error("Device tree blob has a bad token {token:#x} at offset {offset:#x}")]
    Token { token: u32, offset: usize },
    #[error("Device tree blob nests nodes deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("Device tree blob has a name that is not valid UTF-8")]
    Name,
    #[error("Cannot write the device tree: {0}")]
    Write(String),
}

impl From<vm_fdt::Error> for DtbError {
    fn from(e: vm_fdt::Error) -> Self {
        DtbError::Write(e.to_string())
    }
}

/// One device-tree node: its name (with unit address), properties in order, children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets (replacing or appending) a property.
    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.props.push((name.into(), value)),
        }
    }

    pub fn remove_prop(&mut self, name: &str) {
        self.props.retain(|(n, _)| n != name);
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The child called `name`, created when missing.
    pub fn child_mut_or_insert(&mut self, name: &str) -> &mut Node {
        let at = match self.children.iter().position(|c| c.name == name) {
            Some(at) => at,
            None => {
                self.children.push(Node::new(name));
                self.children.len() - 1
            }
        };
        &mut self.children[at]
    }

    /// A property as one big-endian cell.
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        Some(u32::from_be_bytes(self.prop(name)?.try_into().ok()?))
    }

    /// A property as big-endian cells.
    pub fn prop_cells(&self, name: &str) -> Option<Vec<u32>> {
        let v = self.prop(name)?;
        (v.len() % 4 == 0).then(|| {
            v.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
    }

    /// A property as a list of NUL-terminated strings.
    pub fn prop_strings(&self, name: &str) -> Option<Vec<String>> {
        let v = self.prop(name)?;
        let v = v.strip_suffix(&[0])?;
        v.split(|&b| b == 0)
            .map(|s| String::from_utf8(s.to_vec()).ok())
            .collect()
    }

    /// A property as one string.
    pub fn prop_str(&self, name: &str) -> Option<String> {
        let mut list = self.prop_strings(name)?;
        (list.len() == 1).then(|| list.remove(0))
    }
}

/// A whole device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dtb {
    pub root: Node,
    /// The memory reservation block: (address, size).
    pub reserved: Vec<(u64, u64)>,
    pub boot_cpuid_phys: u32,
}

struct Reader<'a> {
    blob: &'a [u8],
}

impl Reader<'_> {
    fn u32(&self, off: usize) -> Result<u32, DtbError> {
        let b = self
            .blob
            .get(off..off.checked_add(4).ok_or(DtbError::Truncated)?)
            .ok_or(DtbError::Truncated)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&self, off: usize) -> Result<u64, DtbError> {
        Ok(u64::from(self.u32(off)?) << 32 | u64::from(self.u32(off + 4)?))
    }

    /// The NUL-terminated string at `off`, not crossing `end`.
    fn cstr(&self, off: usize, end: usize) -> Result<&str, DtbError> {
        let bytes = self.blob.get(off..end).ok_or(DtbError::Truncated)?;
        let len = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(DtbError::Truncated)?;
        std::str::from_utf8(&bytes[..len]).map_err(|_| DtbError::Name)
    }
}

fn align4(x: usize) -> Option<usize> {
    x.checked_add(3).map(|x| x & !3)
}

impl Dtb {
    pub fn parse(blob: &[u8]) -> Result<Dtb, DtbError> {
        let r = Reader { blob };
        let magic = r.u32(0)?;
        if magic != FDT_MAGIC {
            return Err(DtbError::Magic(magic));
        }
        let total = r.u32(4)? as usize;
        if total > blob.len() || total < 40 {
            return Err(DtbError::Truncated);
        }
        let r = Reader {
            blob: &blob[..total],
        };
        let off_struct = r.u32(8)? as usize;
        let off_strings = r.u32(12)? as usize;
        let off_rsv = r.u32(16)? as usize;
        let version = r.u32(20)?;
        if version < 16 {
            return Err(DtbError::Version(version));
        }
        let boot_cpuid_phys = r.u32(28)?;
        let size_strings = r.u32(32)? as usize;
        let strings_end = off_strings
            .checked_add(size_strings)
            .filter(|&e| e <= total)
            .ok_or(DtbError::Truncated)?;

        let mut reserved = Vec::new();
        let mut off = off_rsv;
        loop {
            let (addr, size) = (r.u64(off)?, r.u64(off + 8)?);
            if addr == 0 && size == 0 {
                break;
            }
            reserved.push((addr, size));
            off += 16;
        }

        // Walk the structure block with an explicit stack: no recursion on input.
        let mut stack: Vec<Node> = Vec::new();
        let mut root = None;
        let mut off = off_struct;
        loop {
            let token = r.u32(off)?;
            let at = off;
            off += 4;
            match token {
                FDT_BEGIN_NODE => {
                    if stack.len() >= MAX_DEPTH || root.is_some() {
                        return Err(if root.is_some() {
                            DtbError::Token { token, offset: at }
                        } else {
                            DtbError::TooDeep
                        });
                    }
                    let name = r.cstr(off, total)?;
                    off = align4(off + name.len() + 1).ok_or(DtbError::Truncated)?;
                    stack.push(Node::new(name));
                }
                FDT_END_NODE => {
                    let node = stack.pop().ok_or(DtbError::Token { token, offset: at })?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
                FDT_PROP => {
                    let len = r.u32(off)? as usize;
                    let name_off = r.u32(off + 4)? as usize;
                    off += 8;
                    let value = r
                        .blob
                        .get(off..off.checked_add(len).ok_or(DtbError::Truncated)?)
                        .ok_or(DtbError::Truncated)?;
                    let name = r.cstr(
                        off_strings
                            .checked_add(name_off)
                            .ok_or(DtbError::Truncated)?,
                        strings_end,
                    )?;
                    let node = stack
                        .last_mut()
                        .ok_or(DtbError::Token { token, offset: at })?;
                    node.props.push((name.into(), value.to_vec()));
                    off = align4(off + len).ok_or(DtbError::Truncated)?;
                }
                FDT_NOP => {}
                FDT_END if stack.is_empty() => break,
                _ => return Err(DtbError::Token { token, offset: at }),
            }
        }
        Ok(Dtb {
            root: root.ok_or(DtbError::Truncated)?,
            reserved,
            boot_cpuid_phys,
        })
    }

    /// The node at an absolute path such as `/soc/serial@10000000`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .try_fold(&self.root, |n, part| n.child(part))
    }

    /// Encodes the tree as a DTB (version 17).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DtbError> {
        let rsv = self
            .reserved
            .iter()
            .map(|&(a, s)| FdtReserveEntry::new(a, s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut w = FdtWriter::new_with_mem_reserv(&rsv)?;
        w.set_boot_cpuid_phys(self.boot_cpuid_phys);
        // Depth is bounded by MAX_DEPTH (parse) or by our own builders, so recursion
        // here is bounded too.
        fn emit(w: &mut FdtWriter, n: &Node) -> Result<(), DtbError> {
            let h = w.begin_node(&n.name)?;
            for (name, value) in &n.props {
                w.property(name, value)?;
            }
            for c in &n.children {
                emit(w, c)?;
            }
            Ok(w.end_node(h)?)
        }
        emit(&mut w, &self.root)?;
        Ok(w.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w =
            FdtWriter::new_with_mem_reserv(&[FdtReserveEntry::new(0x1000, 0x20).unwrap()]).unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "console=ttyS0").unwrap();
        w.end_node(chosen).unwrap();
        let soc = w.begin_node("soc").unwrap();
        let s = w.begin_node("serial@10000000").unwrap();
        w.property_string_list("compatible", vec!["a".into(), "b".into()])
            .unwrap();
        w.property_array_u32("interrupts", &[10, 11]).unwrap();
        w.end_node(s).unwrap();
        w.end_node(soc).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn parses_and_round_trips() {
        let blob = sample();
        let dtb = Dtb::parse(&blob).unwrap();
        assert_eq!(dtb.reserved, vec![(0x1000, 0x20)]);
        assert_eq!(dtb.root.prop_u32("#address-cells"), Some(2));
        assert_eq!(
            dtb.node("/chosen").unwrap().prop_str("bootargs").as_deref(),
            Some("console=ttyS0")
        );
        let serial = dtb.node("/soc/serial@10000000").unwrap();
        assert_eq!(
            serial.prop_strings("compatible"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(serial.prop_cells("interrupts"), Some(vec![10, 11]));
        assert!(dtb.node("/soc/nope").is_none());
        assert_eq!(dtb.to_bytes().unwrap(), blob);
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        let blob = sample();
        assert!(matches!(Dtb::parse(&[]), Err(DtbError::Truncated)));
        assert!(matches!(Dtb::parse(&[0u8; 64]), Err(DtbError::Magic(0))));
        // Every truncation and every single-byte corruption must give Ok or Err, never
        // a panic.
        for len in 0..blob.len() {
            let mut t = blob[..len].to_vec();
            if t.len() >= 8 {
                t[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            }
            assert!(Dtb::parse(&t).is_err(), "truncated to {len}");
        }
        for i in 0..blob.len() {
            for v in [0u8, 0xff, 0x03, 0x80] {
                let mut c = blob.clone();
                c[i] = v;
                let _ = Dtb::parse(&c);
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut w = FdtWriter::new().unwrap();
        let mut hs = Vec::new();
        for _ in 0..64 {
            hs.push(w.begin_node("n").unwrap());
        }
        while let Some(h) = hs.pop() {
            w.end_node(h).unwrap();
        }
        let mut blob = w.finish().unwrap();
        assert!(Dtb::parse(&blob).is_ok());
        // Hand-build one level more: rewrite the first END_NODE into BEGIN_NODE "n".
        let struct_off = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
        let mut extra = Vec::new();
        extra.extend(FDT_BEGIN_NODE.to_be_bytes());
        extra.extend(b"n\0\0\0");
        blob.splice(struct_off..struct_off, extra.iter().copied());
        let total = blob.len() as u32;
        blob[4..8].copy_from_slice(&total.to_be_bytes());
        let strings = u32::from_be_bytes(blob[12..16].try_into().unwrap()) + 8;
        blob[12..16].copy_from_slice(&strings.to_be_bytes());
        assert!(matches!(Dtb::parse(&blob), Err(DtbError::TooDeep)));
    }

    #[test]
    fn set_and_remove_props() {
        let mut dtb = Dtb::parse(&sample()).unwrap();
        let chosen = dtb.root.child_mut_or_insert("chosen");
        chosen.set_prop("bootargs", b"quiet\0".to_vec());
        chosen.set_prop("linux,initrd-start", 5u64.to_be_bytes().to_vec());
        chosen.remove_prop("nothing");
        let again = Dtb::parse(&dtb.to_bytes().unwrap()).unwrap();
        let c = again.node("/chosen").unwrap();
        assert_eq!(c.prop_str("bootargs").as_deref(), Some("quiet"));
        assert_eq!(c.prop("linux,initrd-start"), Some(&5u64.to_be_bytes()[..]));
        let fresh = again.root.clone();
        let mut d2 = Dtb {
            root: fresh,
            reserved: vec![],
            boot_cpuid_phys: 0,
        };
        d2.root
            .child_mut_or_insert("aliases")
            .set_prop("x", vec![0]);
        assert!(d2.node("/aliases").is_some());
    }
}
