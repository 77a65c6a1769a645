//! Framing::split: input is [delimiter length byte] [delimiter (1..=4 bytes)] then the driver's
//! header and the stream (see fuzz/src/lib.rs).
#![no_main]

use eventmux::framing::Framing;
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let len = usize::from(input.byte() % 4) + 1;
    let mut delimiter = input.bytes(len).to_vec();
    if delimiter.is_empty() {
        delimiter.push(b'\n');
    }
    check_framing(Framing::split(delimiter), input);
});
