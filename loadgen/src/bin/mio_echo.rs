//! TCP echo server written by hand on mio, for comparison with eventmux's `echo` example
//! (the server is `loadgen::MioEcho`; see there for how it is written).
//!
//!     cargo run --release -p loadgen --bin mio_echo [ADDR]      # default 127.0.0.1:7013
//!
//! `scripts/compare.sh` runs it beside `echo` and `tokio_echo` under `loadgen`.

use std::io::{self, Write};

use loadgen::MioEcho;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7013".into());
    let mut server = MioEcho::bind(addr.as_str())?;
    println!("listening on {}", server.local_addr()?);
    io::stdout().flush()?;
    server.serve_until(|| false)
}
