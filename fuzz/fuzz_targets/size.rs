//! Framing::size: input is [shape byte] [adjust bytes?] then the driver's header and the
//! stream (see fuzz/src/lib.rs).
//!
//! Shape byte: bits 0-1 width 1/2/4/8, bit 2 little endian, bits 3-4 adjust:
//! 0 none, 1 minus the header width, 2 one signed byte, 3 a full little-endian i64.
#![no_main]

use eventmux::framing::{Endian, Framing, Size};
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let shape = input.byte();
    let width = [1usize, 2, 4, 8][usize::from(shape & 3)];
    let endian = if shape & 4 != 0 {
        Endian::Little
    } else {
        Endian::Big
    };
    let adjust = match (shape >> 3) & 3 {
        0 => 0,
        1 => -(width as i64),
        2 => i64::from(input.byte() as i8),
        _ => input.i64(),
    };
    check_framing(
        Framing::size(Size::new(width, endian).adjust(adjust)),
        input,
    );
});
