//! Framing::lines: no parameters; the driver's header, then the stream (see fuzz/src/lib.rs).
#![no_main]

use eventmux::framing::Framing;
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_framing(Framing::lines(), Input::new(data));
});
