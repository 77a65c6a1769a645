//! [`Args`]: the `loadgen` binary's command line,
//! `ADDR [--conns N] [--secs S] [--size B] [--depth D] [--warmup S]`.

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
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    addr: SocketAddr,
    connections: usize,
    secs: f64,
    size: usize,
    depth: usize,
    warm_up: f64,
}

impl Args {
    /// One line of usage, for error messages.
    pub const USAGE: &'static str =
        "ADDR [--conns N (50)] [--secs S (5)] [--size B (64)] [--depth D (1)] [--warmup S (0.5)]";

    /// The arguments after the program's name; an error says what is wrong.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            addr: "127.0.0.1:7007".parse().expect("a valid default"),
            connections: 50,
            secs: 5.0,
            size: 64,
            depth: 1,
            warm_up: 0.5,
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
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                addr => parsed.addr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?,
            }
        }
        if parsed.connections == 0 || parsed.size == 0 || parsed.depth == 0 || parsed.secs == 0.0 {
            return Err("--conns, --size, --depth and --secs must be positive".into());
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
    }

    #[test]
    fn defaults_match_the_usage_line() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.addr(), "127.0.0.1:7007".parse().unwrap());
        assert_eq!(args.connections(), 50);
        assert_eq!(args.run_time(), Duration::from_secs(5));
        assert_eq!(args.traffic(), Traffic::Messages { size: 64, depth: 1 });
        assert_eq!(args.warm_up(), Duration::from_millis(500));
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
    }
}
