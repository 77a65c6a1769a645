//! The command line the example servers share: the listen address first (each example has
//! its default), `-h`/`--help` for the usage, and the example's own options. A bad command
//! line prints what is wrong and the usage, and exits with status 2. Each example includes
//! this file with `mod cli;` and names its options in the closure it gives to [`parse`].
#![allow(dead_code)] // each example uses its own subset

use std::time::Duration;

/// The listen address from the command line (`default_addr` without one). Each option is
/// handed to `option`, which takes its value from the iterator and says whether it knew
/// the option.
pub fn parse(
    name: &str,
    usage: &str,
    default_addr: &str,
    mut option: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> Result<bool, String>,
) -> String {
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let outcome = loop {
        let Some(arg) = args.next() else {
            break Ok(addr.unwrap_or_else(|| default_addr.to_string()));
        };
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{usage}");
                std::process::exit(0);
            }
            flag if flag.starts_with('-') => match option(flag, &mut args) {
                Ok(true) => {}
                Ok(false) => break Err(format!("unknown option {flag}")),
                Err(why) => break Err(why),
            },
            _ if addr.is_none() => addr = Some(arg),
            _ => break Err(format!("unexpected argument {arg}")),
        }
    };
    outcome.unwrap_or_else(|why| {
        eprint!("{name}: {why}\n{usage}");
        std::process::exit(2);
    })
}

/// A number of seconds (fractions allowed) for `flag`; 0 means no deadline.
pub fn seconds(flag: &str, value: Option<String>) -> Result<Option<Duration>, String> {
    value
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(|d| (!d.is_zero()).then_some(d))
        .ok_or_else(|| format!("{flag} takes a number of seconds"))
}

/// A whole number above 0 for `flag`.
pub fn count(flag: &str, value: Option<String>) -> Result<usize, String> {
    value
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{flag} takes a number above 0"))
}

/// A busy-polling window in microseconds for `flag` (0: none).
pub fn micros(flag: &str, value: Option<String>) -> Result<Duration, String> {
    value
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros)
        .ok_or_else(|| format!("{flag} takes a number of microseconds"))
}

/// How long a server drains on SIGTERM or SIGINT before what is left is cut off.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Drains the server on SIGTERM or SIGINT: the first prints `shutting down` and starts a
/// graceful shutdown (`run()` returns once every connection is done, so `main` exits 0);
/// a second one, during the grace time, forces the end.
pub fn drain_on_signals(reactor: &mut eventmux::Reactor) -> std::io::Result<()> {
    reactor.signals(&[libc::SIGTERM, libc::SIGINT], Drain { asked: false })?;
    Ok(())
}

/// The signal handler of [`drain_on_signals`].
struct Drain {
    asked: bool,
}

impl eventmux::Handler for Drain {
    fn on_signal(&mut self, ctx: &mut eventmux::Context<'_>, _signal: &eventmux::Signal) {
        if self.asked {
            println!("shutting down now");
            ctx.shutdown(Duration::ZERO);
        } else {
            println!("shutting down");
            self.asked = true;
            ctx.shutdown(DRAIN_GRACE);
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    /// Stays open through the drain, so that a second signal can force the end.
    fn on_shutdown(&mut self, _ctx: &mut eventmux::Context<'_>) {}
}

/// How many reactor threads a server runs, and whether they are pinned: `--threads N` and
/// `--pin`, for the examples that scale over cores.
#[derive(Copy, Clone, Debug)]
pub struct Cores {
    pub threads: usize,
    pub pin: bool,
}

impl Default for Cores {
    fn default() -> Cores {
        Cores {
            threads: 1,
            pin: false,
        }
    }
}

/// The usage lines of [`Cores`]'s options, their descriptions starting at `column`.
pub fn cores_usage(column: usize) -> String {
    [
        (
            "--threads N",
            "reactor threads, one per core at most (default 1)",
        ),
        (
            "--pin",
            "pin reactor thread i to the i-th CPU (default off)",
        ),
    ]
    .iter()
    .map(|(flag, what)| format!("  {flag:<width$}{what}\n", width = column - 2))
    .collect()
}

impl Cores {
    /// Takes `--threads N` or `--pin`; says whether `flag` was one of them.
    pub fn option(
        &mut self,
        flag: &str,
        value: &mut dyn Iterator<Item = String>,
    ) -> Result<bool, String> {
        match flag {
            "--threads" => self.threads = count(flag, value.next())?,
            "--pin" => self.pin = true,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Runs a reactor group until SIGTERM or SIGINT: the first prints `shutting down` and
/// drains every reactor (its connections finish within [`DRAIN_GRACE`]); a second one
/// forces the end. Returns once every thread has ended.
pub fn run_group(group: eventmux::ReactorGroup) -> std::io::Result<()> {
    use std::rc::Rc;
    let group = Rc::new(group);
    let mut signals = eventmux::Reactor::new()?;
    signals.signals(
        &[libc::SIGTERM, libc::SIGINT],
        DrainGroup {
            group: group.clone(),
            asked: false,
        },
    )?;
    while !group.is_finished() {
        signals.run_once(Some(Duration::from_millis(50)))?;
    }
    drop(signals);
    match Rc::try_unwrap(group) {
        Ok(group) => group.join(),
        Err(_) => Ok(()),
    }
}

/// The signal handler of [`run_group`].
struct DrainGroup {
    group: std::rc::Rc<eventmux::ReactorGroup>,
    asked: bool,
}

impl eventmux::Handler for DrainGroup {
    fn on_signal(&mut self, _ctx: &mut eventmux::Context<'_>, _signal: &eventmux::Signal) {
        let grace = if self.asked {
            println!("shutting down now");
            Duration::ZERO
        } else {
            println!("shutting down");
            self.asked = true;
            DRAIN_GRACE
        };
        use std::io::Write;
        let _ = std::io::stdout().flush();
        self.group.shutdown(grace);
    }
}

/// `--tls CERT KEY`: PEM files of a certificate chain and its key, for the examples that
/// serve TLS (built with `--features tls`).
#[derive(Clone, Debug, Default)]
pub struct TlsFiles(Option<(String, String)>);

/// The usage line of [`TlsFiles`]'s option.
pub fn tls_usage(column: usize) -> String {
    let what = if cfg!(feature = "tls") {
        "serve TLS with this PEM certificate chain and key (scripts/make_cert.sh makes a pair)"
    } else {
        "serve TLS (needs a build with --features tls)"
    };
    format!("  {:<width$}{what}\n", "--tls CERT KEY", width = column - 2)
}

impl TlsFiles {
    /// Takes `--tls CERT KEY`; says whether `flag` was it.
    pub fn option(
        &mut self,
        flag: &str,
        value: &mut dyn Iterator<Item = String>,
    ) -> Result<bool, String> {
        if flag != "--tls" {
            return Ok(false);
        }
        let (Some(cert), Some(key)) = (value.next(), value.next()) else {
            return Err("--tls takes a certificate file and a key file".into());
        };
        if !cfg!(feature = "tls") {
            return Err(
                "--tls needs a build with TLS: cargo run --features tls --example ...".into(),
            );
        }
        self.0 = Some((cert, key));
        Ok(true)
    }

    /// `options` with TLS from the files, if `--tls` was given (exits with status 2 and the
    /// reason if the files do not load).
    pub fn apply(&self, options: eventmux::Options) -> eventmux::Options {
        #[cfg(feature = "tls")]
        if let Some((cert, key)) = &self.0 {
            match eventmux::tls::server_config(cert.as_ref(), key.as_ref()) {
                Ok(config) => return options.tls(config),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
        options
    }
}
