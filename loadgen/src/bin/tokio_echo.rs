//! TCP echo server on tokio, for comparison with eventmux's `echo` example: a
//! `current_thread` runtime (one thread, like the reactor), one task per connection that
//! reads into a 64 KiB buffer and `write_all`s it back, `TCP_NODELAY` on (eventmux's
//! default). The server is `loadgen::TokioEcho`, the one `benches/echo.rs` runs too.
//!
//!     cargo run --release -p loadgen --bin tokio_echo [ADDR]      # default 127.0.0.1:7012
//!
//! `scripts/compare.sh` runs it beside `echo` and `mio_echo` under `loadgen`.

use std::io::{self, Write};
use std::sync::Arc;

use loadgen::{ServerStats, TokioEcho};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7012".into());
    let server = TokioEcho::bind(addr.as_str())?;
    println!("listening on {}", server.local_addr()?);
    io::stdout().flush()?;
    // Nobody reads the counters of a server on its own: its errors go to standard error.
    server.run(Arc::new(ServerStats::printing_errors()))
}
