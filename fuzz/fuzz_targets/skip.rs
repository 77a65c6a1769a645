//! Framing::skip(n, then): input is [n byte] (n = 0..=255 bytes skipped) [then selector:
//! lines or fixed(1..=8)] then the driver's header and the stream (see fuzz/src/lib.rs).
#![no_main]

use eventmux::framing::Framing;
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let n = u64::from(input.byte());
    let then = match input.byte() % 9 {
        0 => Framing::lines(),
        k => Framing::fixed(usize::from(k)),
    };
    check_framing(Framing::skip(n, then), input);
});
