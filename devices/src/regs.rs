//! Byte-lane helpers for devices whose registers accept narrower or misaligned accesses.

/// Mask of the low `size` bytes; `None` for a size that is not 1, 2, 4 or 8.
pub fn size_mask(size: u8) -> Option<u64> {
    match size {
        1 => Some(0xff),
        2 => Some(0xffff),
        4 => Some(0xffff_ffff),
        8 => Some(u64::MAX),
        _ => None,
    }
}

/// The `size` bytes at byte `at` of a little-endian register of `width` bytes holding
/// `reg`; `None` when the access does not lie inside the register.
pub fn read_lane(reg: u64, width: u64, at: u64, size: u8) -> Option<u64> {
    let mask = size_mask(size)?;
    (at.checked_add(u64::from(size))? <= width.min(8)).then(|| (reg >> (8 * at)) & mask)
}

/// `reg` with the `size` bytes at byte `at` replaced by the low bytes of `value`; `None`
/// when the access does not lie inside the register.
pub fn write_lane(reg: u64, width: u64, at: u64, size: u8, value: u64) -> Option<u64> {
    let mask = size_mask(size)?;
    (at.checked_add(u64::from(size))? <= width.min(8))
        .then(|| (reg & !(mask << (8 * at))) | ((value & mask) << (8 * at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes() {
        assert_eq!(read_lane(0x1122_3344_5566_7788, 8, 4, 4), Some(0x1122_3344));
        assert_eq!(read_lane(0x1122_3344_5566_7788, 8, 1, 2), Some(0x6677));
        assert_eq!(
            read_lane(0x1122_3344_5566_7788, 8, 0, 8),
            Some(0x1122_3344_5566_7788)
        );
        assert_eq!(read_lane(0, 8, 6, 4), None);
        assert_eq!(read_lane(0, 4, 0, 3), None);
        assert_eq!(read_lane(0, 4, u64::MAX, 1), None);
        assert_eq!(
            write_lane(u64::MAX, 8, 2, 2, 0),
            Some(0xffff_ffff_0000_ffff)
        );
        assert_eq!(write_lane(0, 8, 0, 8, 5), Some(5));
        assert_eq!(write_lane(0, 4, 2, 4, 5), None);
    }
}
