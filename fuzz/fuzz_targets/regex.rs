//! Framing::regex: input is [pattern index byte] then the driver's header and the stream
//! (see fuzz/src/lib.rs).
//!
//! The patterns are fixed: as Framing::regex's doc says, records only come out the same
//! however the stream is cut when a pattern ends with a terminator, so arbitrary fuzzed
//! patterns would break the differential check by design (and mostly fuzz the regex crate).
#![no_main]

use eventmux::framing::Framing;
use eventmux_fuzz::{check_framing, Input};
use libfuzzer_sys::fuzz_target;

const PATTERNS: [&str; 6] = [
    // The crate's own proptest pattern: records end with ";\n".
    r"([^\n;]*);\n",
    // Bracketed words, junk between them skipped; \w is Unicode (multi-byte UTF-8).
    r"<(\w*)>",
    // Anything up to a blank line, raw bytes.
    r"(?s-u)(.*?)\r\n\r\n",
    // key=value lines, value as the record.
    r"(?m)^[a-z]+=([0-9]*)\n",
    // Netstring-like: digits, colon, payload without comma, comma.
    r"(?-u)[0-9]+:([^,]*),",
    // No capture group: the whole match is the record.
    r"(?-u)\x00[\x01-\xff]{0,8}\x00",
];

thread_local! {
    // Compiled once (a Framing is not Sync, so per thread; libFuzzer runs one).
    static FRAMINGS: Vec<Framing> = PATTERNS
        .iter()
        .map(|p| Framing::regex(p).expect("pattern compiles"))
        .collect();
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let pick = usize::from(input.byte()) % PATTERNS.len();
    // Clone gives a decoder with fresh state (Decoder::fresh), without recompiling the regex.
    let framing = FRAMINGS.with(|framings| framings[pick].clone());
    check_framing(framing, input);
});
