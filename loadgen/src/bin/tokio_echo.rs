//! TCP echo server on tokio, for comparison with eventmux's `echo` example: a
//! `current_thread` runtime (one thread, like the reactor), one task per connection that
//! reads into a 64 KiB buffer and `write_all`s it back, `TCP_NODELAY` on (eventmux's
//! default). The server is `loadgen::TokioEcho`, the one `benches/echo.rs` runs too.
//!
//!     cargo run --release -p loadgen --bin tokio_echo [ADDR] [--threads N]
//!
//! ADDR defaults to 127.0.0.1:7012. `--threads N` (1) serves on a `multi_thread` runtime
//! with N worker threads instead (`TokioEcho::with_workers`); 1 is the `current_thread`
//! runtime. Prints `listening on ADDR` once ready; a bad command line exits with status 2.
//!
//! `scripts/compare.sh` runs it beside `echo` and `mio_echo` under `loadgen`;
//! `scripts/scale.sh` runs it with `--threads N` beside `echo --threads N`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use loadgen::{ServerStats, TokioEcho};

const USAGE: &str = "usage: tokio_echo [ADDR (127.0.0.1:7012)] [--threads N (1)]";

/// The address and the number of worker threads.
fn parse(args: impl IntoIterator<Item = String>) -> Result<(String, usize), String> {
    let (mut addr, mut threads) = (None, 1);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--threads" => {
                let value = args.next().ok_or("--threads needs a value")?;
                threads = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--threads {value:?} is not a number above 0"))?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:7012".into()), threads))
}

fn main() -> ExitCode {
    let (addr, threads) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("tokio_echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&addr, threads) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: &str, threads: usize) -> io::Result<()> {
    let server = TokioEcho::with_workers(addr, threads)?;
    println!("listening on {}", server.local_addr()?);
    io::stdout().flush()?;
    // Nobody reads the counters of a server on its own: its errors go to standard error.
    server.run(Arc::new(ServerStats::printing_errors()))
}
