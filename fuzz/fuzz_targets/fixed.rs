//! Framing::fixed: input is [n byte] (n = 1..=64) then the driver's header and the stream
//! (see fuzz/src/lib.rs).
#![no_main]

use eventmux::framing::Framing;
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let n = usize::from(input.byte() % 64) + 1;
    check_framing(Framing::fixed(n), input);
});
