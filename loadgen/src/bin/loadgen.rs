//! TCP load on an echo server: N connections, each keeping D messages of B bytes in flight
//! (D = 1 is ping-pong), every echoed byte checked against what was sent.
//!
//!     cargo run --release -p loadgen -- 127.0.0.1:7007 --conns 50 --secs 5 --size 64 --depth 1
//!
//! Prints a summary, then the echoed messages per second alone on the last line (what
//! `scripts/compare.sh` reads). Exits with status 1 if a byte comes back wrong or out of
//! turn, a connection closes early, no echo arrives for 10 s, or the bytes still in flight
//! at the end do not all come back; with status 2 on a bad command line. Options:
//! `--conns N` (50), `--secs S` (5), `--size B` (64), `--depth D` (1), `--warmup S` (0.5:
//! traffic that is not counted). One thread drives every connection (see
//! `loadgen::EchoLoad`).

use std::process::ExitCode;
use std::time::Instant;

use loadgen::{Args, EchoLoad};

fn run(args: &Args) -> Result<(), String> {
    let traffic = args.traffic();
    let mut load =
        EchoLoad::connect(args.addr(), args.connections(), traffic).map_err(|e| e.to_string())?;
    load.run_for(args.warm_up()).map_err(|e| e.to_string())?;
    let began = Instant::now();
    let echoed = load.run_for(args.run_time()).map_err(|e| e.to_string())?;
    let elapsed = began.elapsed().as_secs_f64();
    load.finish().map_err(|e| e.to_string())?;
    let size = traffic.message_size() as u64;
    let messages: u64 = echoed.iter().map(|bytes| bytes / size).sum();
    let least = echoed.iter().min().copied().unwrap_or(0) / size;
    let most = echoed.iter().max().copied().unwrap_or(0) / size;
    println!(
        "loadgen: {}, {} connections, {traffic}, {elapsed:.1} s after a {:.1} s warm-up",
        args.addr(),
        args.connections(),
        args.warm_up().as_secs_f64()
    );
    println!("echoed {messages} messages, every byte checked; per connection {least} to {most}");
    if least == 0 {
        return Err("a connection got no echo at all".into());
    }
    println!("{:.0}", messages as f64 / elapsed);
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("loadgen: {e}\nusage: loadgen {}", Args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
