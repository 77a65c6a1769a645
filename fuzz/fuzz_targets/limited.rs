//! Framing::max_size(limit) on a rule: input is [limit byte] (1..=256) [rule selector:
//! lines, split on "\r\n", or fixed(1..=8)] then the driver's header and the stream (see
//! fuzz/src/lib.rs). The rule's own limit replaces the driver's.
#![no_main]

use eventmux::framing::Framing;
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limit = usize::from(input.byte()) + 1;
    let rule = match input.byte() % 10 {
        0 => Framing::lines(),
        1 => Framing::split(b"\r\n".to_vec()),
        k => Framing::fixed(usize::from(k - 1)),
    };
    check_framing(rule.max_size(limit), input);
});
