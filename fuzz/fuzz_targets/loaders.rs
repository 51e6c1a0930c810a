//! Host input that must never panic Rivet: kernel/firmware images (ELF, Linux Image
//! header) and user-supplied device tree blobs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input");
    let _ = rivet_machines::boot::elf::parse(path, data, 0x8000_0000, &["tohost", "fromhost"]);
    let _ = rivet_machines::boot::image::parse(path, data);
    if let Ok(dtb) = rivet_machines::dtb::Dtb::parse(data) {
        let _ = dtb.to_bytes();
    }
});
