//! [`Args`]: the `loadgen` binary's command line,
//! `ADDR [--conns N] [--secs S] [--size B] [--depth D] [--warmup S] [--threads T]`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Traffic;

/// Where to send load, how much, and for how long.
///
/// ```
/// use loadgen::{Args, Traffic};
/// let args = Args::parse(["127.0.0.1:7007", "--depth", "16"].map(String::from)).unwrap();
/// assert_eq!(args.connections(), 50);
/// assert_eq!(args.traffic(), Traffic::Messages { size: 64, depth: 16 });
/// assert_eq!(args.per_thread(), [50]);
///
/// let args = Args::parse(["--conns", "10", "--threads", "4"].map(String::from)).unwrap();
/// assert_eq!(args.per_thread(), [3, 3, 2, 2]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    addr: SocketAddr,
    connections: usize,
    secs: f64,
    size: usize,
    depth: usize,
    warm_up: f64,
    threads: usize,
}

impl Args {
    /// One line of usage, for error messages.
    pub const USAGE: &'static str = "ADDR [--conns N (50)] [--secs S (5)] [--size B (64)] \
        [--depth D (1)] [--warmup S (0.5)] [--threads T (1)]";

    /// The arguments after the program's name; an error says what is wrong.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            addr: "127.0.0.1:7007".parse().expect("a valid default"),
            connections: 50,
            secs: 5.0,
            size: 64,
            depth: 1,
            warm_up: 0.5,
            threads: 1,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<f64, String> {
                let text = args.next().ok_or(format!("{name} needs a value"))?;
                text.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or(format!("{name} {text:?} is not a number"))
            };
            match arg.as_str() {
                "--conns" => parsed.connections = whole(value("--conns")?, "--conns")?,
                "--secs" => parsed.secs = value("--secs")?,
                "--size" => parsed.size = whole(value("--size")?, "--size")?,
                "--depth" => parsed.depth = whole(value("--depth")?, "--depth")?,
                "--warmup" => parsed.warm_up = value("--warmup")?,
                "--threads" => parsed.threads = whole(value("--threads")?, "--threads")?,
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                addr => parsed.addr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?,
            }
        }
        if parsed.connections == 0 || parsed.size == 0 || parsed.depth == 0 || parsed.secs == 0.0 {
            return Err("--conns, --size, --depth and --secs must be positive".into());
        }
        if parsed.threads == 0 || parsed.threads > parsed.connections {
            return Err(format!(
                "--threads {} must be between 1 and --conns ({})",
                parsed.threads, parsed.connections
            ));
        }
        Ok(parsed)
    }

    /// The echo server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections to open.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// How many threads drive the connections, each its own [`crate::EchoLoad`].
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The connections of each thread: [`Args::connections`] split as evenly as it goes,
    /// the first threads taking one more when it does not divide.
    pub fn per_thread(&self) -> Vec<usize> {
        let (share, extra) = (
            self.connections / self.threads,
            self.connections % self.threads,
        );
        (0..self.threads)
            .map(|thread| share + usize::from(thread < extra))
            .collect()
    }

    /// What each connection sends.
    pub fn traffic(&self) -> Traffic {
        Traffic::Messages {
            size: self.size,
            depth: self.depth,
        }
    }

    /// How long the measured run lasts.
    pub fn run_time(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }

    /// How long the traffic runs, uncounted, before the measured run.
    pub fn warm_up(&self) -> Duration {
        Duration::from_secs_f64(self.warm_up)
    }
}

/// `value` as a count, refusing fractions rather than cutting them off.
fn whole(value: f64, name: &str) -> Result<usize, String> {
    if value.fract() != 0.0 || value > u32::MAX as f64 {
        return Err(format!("{name} {value} is not a whole number"));
    }
    Ok(value as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn every_option_is_read() {
        let args = parse(&[
            "10.0.0.1:99",
            "--conns",
            "3",
            "--secs",
            "0.25",
            "--size",
            "100",
            "--depth",
            "4",
            "--warmup",
            "0",
            "--threads",
            "2",
        ])
        .unwrap();
        assert_eq!(args.addr(), "10.0.0.1:99".parse().unwrap());
        assert_eq!(args.connections(), 3);
        assert_eq!(args.run_time(), Duration::from_millis(250));
        assert_eq!(
            args.traffic(),
            Traffic::Messages {
                size: 100,
                depth: 4
            }
        );
        assert_eq!(args.warm_up(), Duration::ZERO);
        assert_eq!(args.threads(), 2);
        assert_eq!(args.per_thread(), [2, 1]);
    }

    #[test]
    fn defaults_match_the_usage_line() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.addr(), "127.0.0.1:7007".parse().unwrap());
        assert_eq!(args.connections(), 50);
        assert_eq!(args.run_time(), Duration::from_secs(5));
        assert_eq!(args.traffic(), Traffic::Messages { size: 64, depth: 1 });
        assert_eq!(args.warm_up(), Duration::from_millis(500));
        assert_eq!(args.threads(), 1);
        assert_eq!(args.per_thread(), [50]);
    }

    #[test]
    fn connections_are_spread_over_the_threads() {
        for (conns, threads) in [(1, 1), (7, 7), (50, 3), (100, 4), (101, 16)] {
            let args = parse(&[
                "--conns",
                &conns.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .unwrap();
            let shares = args.per_thread();
            assert_eq!(shares.len(), threads);
            assert_eq!(shares.iter().sum::<usize>(), conns);
            let (least, most) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(most - least <= 1, "{conns} over {threads}: {shares:?}");
            assert!(shares.windows(2).all(|pair| pair[0] >= pair[1]));
        }
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse(&["--conns"]).unwrap_err(), "--conns needs a value");
        assert_eq!(
            parse(&["--secs", "soon"]).unwrap_err(),
            "--secs \"soon\" is not a number"
        );
        assert_eq!(
            parse(&["--depth", "1.5"]).unwrap_err(),
            "--depth 1.5 is not a whole number"
        );
        assert_eq!(parse(&["--fast"]).unwrap_err(), "unknown option --fast");
        assert!(parse(&["localhost"])
            .unwrap_err()
            .starts_with("address \"localhost\""));
        assert!(parse(&["--size", "0"])
            .unwrap_err()
            .contains("must be positive"));
        assert_eq!(
            parse(&["--threads", "0"]).unwrap_err(),
            "--threads 0 must be between 1 and --conns (50)"
        );
        assert_eq!(
            parse(&["--conns", "2", "--threads", "3"]).unwrap_err(),
            "--threads 3 must be between 1 and --conns (2)"
        );
    }
}
