//! Stand-in for the `c99` crate, which softfloat-sys uses only for the `<stdint.h>`
//! "fast" integer typedefs and which runs CMake at build time to discover them. Rivet
//! builds on LP64 Linux (glibc and musl agree there), where these are fixed, so this
//! crate states them and a fresh machine needs no CMake.
#![allow(non_camel_case_types)]

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!("the c99 stand-in knows only LP64 Linux; add this target's <stdint.h> types");

pub type int8_t = i8;
pub type int16_t = i16;
pub type int32_t = i32;
pub type int64_t = i64;
pub type uint8_t = u8;
pub type uint16_t = u16;
pub type uint32_t = u32;
pub type uint64_t = u64;

pub type int_fast8_t = i8;
pub type int_fast16_t = i64;
pub type int_fast32_t = i64;
pub type int_fast64_t = i64;
pub type uint_fast8_t = u8;
pub type uint_fast16_t = u64;
pub type uint_fast32_t = u64;
pub type uint_fast64_t = u64;
