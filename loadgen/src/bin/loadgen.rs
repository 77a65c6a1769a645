//! TCP load on an echo server: N connections, each keeping D messages of B bytes in flight
//! (D = 1 is ping-pong), every echoed byte checked against what was sent.
//!
//!     cargo run --release -p loadgen -- 127.0.0.1:7007 --conns 50 --secs 5 --size 64 --depth 1
//!
//! Prints a summary, then the echoed messages per second alone on the last line (what
//! `scripts/compare.sh` and `scripts/scale.sh` read). Exits with status 1 if a byte comes
//! back wrong or out of turn, a connection closes early, no echo arrives for 10 s, or the
//! bytes still in flight at the end do not all come back; with status 2 on a bad command
//! line. Options: `--conns N` (50), `--secs S` (5), `--size B` (64), `--depth D` (1),
//! `--warmup S` (0.5: traffic that is not counted), `--threads T` (1).
//!
//! Each thread drives its connections with one `loadgen::EchoLoad`. With `--threads T` the
//! connections are split over T threads (N / T each, the first N % T threads one more), to
//! load a server on several cores; the threads all connect, then all warm up, then run
//! the measured stretch together, and the figures are their sums (the rate: every
//! thread's messages over the longest thread's measured time).

use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::{Args, EchoLoad, LoadError, Traffic};

/// What one thread's connections got back in the measured stretch.
struct Share {
    /// Bytes echoed to each of its connections.
    echoed: Vec<u64>,
    /// How long its measured stretch lasted.
    elapsed: Duration,
}

/// One thread's part of the load: connects `connections`, then waits for every thread at
/// each step (even after a failure of its own, so that no other thread waits for it in
/// vain) before warming up and before the measured stretch.
fn drive(
    args: &Args,
    connections: usize,
    traffic: Traffic,
    together: &Barrier,
) -> Result<Share, LoadError> {
    let load = EchoLoad::connect(args.addr(), connections, traffic);
    together.wait();
    let warmed = load.and_then(|mut load| load.run_for(args.warm_up()).map(|_| load));
    together.wait();
    let mut load = warmed?;
    let began = Instant::now();
    let echoed = load.run_for(args.run_time())?;
    let elapsed = began.elapsed();
    load.finish()?;
    Ok(Share { echoed, elapsed })
}

fn run(args: &Args) -> Result<(), String> {
    let traffic = args.traffic();
    let threads = args.threads();
    let together = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = args
        .per_thread()
        .into_iter()
        .enumerate()
        .map(|(index, connections)| {
            let (args, together) = (args.clone(), together.clone());
            thread::Builder::new()
                .name(format!("loadgen-{index}"))
                .spawn(move || drive(&args, connections, traffic, &together))
                .map_err(|e| format!("starting thread {index}: {e}"))
        })
        .collect::<Result<_, String>>()?;
    let mut shares = Vec::with_capacity(threads);
    let mut failure = None;
    for (index, worker) in workers.into_iter().enumerate() {
        let outcome = worker
            .join()
            .unwrap_or_else(|_| panic!("thread {index} panicked"));
        match outcome {
            Ok(share) => shares.push(share),
            // The first failure is reported; the other threads' connections are numbered
            // within their own thread.
            Err(e) if failure.is_none() && threads > 1 => {
                failure = Some(format!("thread {index}: {e}"))
            }
            Err(e) if failure.is_none() => failure = Some(e.to_string()),
            Err(_) => {}
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    let elapsed = shares
        .iter()
        .map(|share| share.elapsed)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let size = traffic.message_size() as u64;
    let echoed = || shares.iter().flat_map(|share| share.echoed.iter().copied());
    let messages: u64 = echoed().map(|bytes| bytes / size).sum();
    let least = echoed().min().unwrap_or(0) / size;
    let most = echoed().max().unwrap_or(0) / size;
    let on_threads = if threads > 1 {
        format!(" on {threads} threads")
    } else {
        String::new()
    };
    println!(
        "loadgen: {}, {} connections{on_threads}, {traffic}, {elapsed:.1} s after a {:.1} s warm-up",
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
