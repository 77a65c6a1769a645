//! [`Knobs`]: a benchmark's settings from environment variables that share a prefix
//! (`ECHO_BENCH_SECS`, `UDP_BENCH_ROUNDS`, ...), with the defaults every side-by-side
//! benchmark shares: seconds per run, rounds, and pinning unless `PREFIX_NO_PIN` is set.
//!
//! `cargo bench` passes `--bench` to a benchmark; run without it (by
//! `cargo test --benches`, say) a benchmark is a smoke test, and its defaults shrink to one
//! round of 0.1 s.

use std::collections::HashMap;
use std::fmt::Debug;
use std::str::FromStr;
use std::time::Duration;

use crate::CpuPair;

/// Seconds per measured run, and rounds, when `cargo bench` runs a benchmark.
const BENCH_SECS: f64 = 1.5;
const BENCH_ROUNDS: usize = 3;
/// The same when a benchmark runs as a smoke test.
const SMOKE_TEST_SECS: f64 = 0.1;
const SMOKE_TEST_ROUNDS: usize = 1;

/// The environment variables of one benchmark.
///
/// ```
/// use loadgen::Knobs;
/// let vars = [("ECHO_BENCH_CONNS".to_string(), "8".to_string())];
/// let knobs = Knobs::from_vars("ECHO_BENCH", false, vars);
/// assert_eq!(knobs.get("CONNS", 50usize), 8);
/// assert_eq!(knobs.get("MSG_SIZE", 64usize), 64);
/// assert_eq!(knobs.rounds(), 3);
/// ```
#[derive(Debug)]
pub struct Knobs {
    prefix: &'static str,
    smoke_test: bool,
    vars: HashMap<String, String>,
}

impl Knobs {
    /// This process's variables starting with `prefix`; a smoke test unless the arguments
    /// include `--bench`.
    pub fn from_env(prefix: &'static str) -> Knobs {
        let smoke_test = !std::env::args().any(|arg| arg == "--bench");
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        Knobs::from_vars(prefix, smoke_test, vars)
    }

    /// The variables among `vars` that start with `prefix`.
    pub fn from_vars(
        prefix: &'static str,
        smoke_test: bool,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Knobs {
        let vars = vars
            .into_iter()
            .filter(|(name, _)| {
                name.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('_'))
            })
            .collect();
        Knobs {
            prefix,
            smoke_test,
            vars,
        }
    }

    /// Whether the benchmark runs as a smoke test (without `--bench`).
    pub fn smoke_test(&self) -> bool {
        self.smoke_test
    }

    /// `PREFIX_NAME`'s value, or `default` if it is not set.
    ///
    /// # Panics
    ///
    /// If it is set to something that does not parse: a benchmark run with a mistyped
    /// setting would measure something else than asked.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: Debug,
    {
        let var = self.name(name);
        match self.vars.get(&var) {
            Some(value) => value
                .parse()
                .unwrap_or_else(|e| panic!("{var}={value:?} is not valid: {e:?}")),
            None => default,
        }
    }

    /// Whether `PREFIX_NAME` is set, to anything.
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(&self.name(name))
    }

    /// Seconds per measured run (`PREFIX_SECS`; 1.5, or 0.1 in a smoke test).
    ///
    /// # Panics
    ///
    /// If it is not a positive number.
    pub fn run_time(&self) -> Duration {
        let default = if self.smoke_test {
            SMOKE_TEST_SECS
        } else {
            BENCH_SECS
        };
        let secs: f64 = self.get("SECS", default);
        assert!(
            secs.is_finite() && secs > 0.0,
            "{} must be positive",
            self.name("SECS")
        );
        Duration::from_secs_f64(secs)
    }

    /// Rounds per measurement (`PREFIX_ROUNDS`; 3, or 1 in a smoke test), at least 1.
    pub fn rounds(&self) -> usize {
        let default = if self.smoke_test {
            SMOKE_TEST_ROUNDS
        } else {
            BENCH_ROUNDS
        };
        self.get("ROUNDS", default).max(1)
    }

    /// Where to pin servers and load: the first two allowed CPUs, or `None` (with a note
    /// printed) if `PREFIX_NO_PIN` is set or pinning is impossible.
    pub fn cpu_pair(&self) -> Option<CpuPair> {
        if self.is_set("NO_PIN") {
            println!("note: {} is set; threads run unpinned", self.name("NO_PIN"));
            return None;
        }
        CpuPair::first_allowed()
    }

    fn name(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs(smoke_test: bool, vars: &[(&str, &str)]) -> Knobs {
        let vars = vars.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        Knobs::from_vars("T_BENCH", smoke_test, vars)
    }

    #[test]
    fn defaults_shrink_in_a_smoke_test() {
        assert_eq!(knobs(true, &[]).run_time(), Duration::from_millis(100));
        assert_eq!(knobs(true, &[]).rounds(), 1);
        assert_eq!(knobs(false, &[]).run_time(), Duration::from_millis(1500));
        assert_eq!(knobs(false, &[]).rounds(), 3);
    }

    #[test]
    fn variables_override_defaults() {
        let knobs = knobs(true, &[("T_BENCH_SECS", "0.5"), ("T_BENCH_ROUNDS", "0")]);
        assert_eq!(knobs.run_time(), Duration::from_millis(500));
        assert_eq!(knobs.rounds(), 1, "at least one round");
    }

    #[test]
    fn other_prefixes_are_ignored() {
        let knobs = knobs(false, &[("OTHER_NO_PIN", ""), ("T_BENCHX", "1")]);
        assert!(!knobs.is_set("NO_PIN"));
        assert!(knobs.vars.is_empty(), "only PREFIX_ names are kept");
    }

    #[test]
    fn a_set_variable_counts_even_when_empty() {
        assert!(knobs(false, &[("T_BENCH_NO_PIN", "")]).is_set("NO_PIN"));
    }

    #[test]
    #[should_panic(expected = "T_BENCH_CONNS=\"many\" is not valid")]
    fn a_mistyped_value_is_refused() {
        knobs(false, &[("T_BENCH_CONNS", "many")]).get("CONNS", 50usize);
    }

    #[test]
    #[should_panic(expected = "T_BENCH_SECS must be positive")]
    fn a_run_takes_some_time() {
        knobs(false, &[("T_BENCH_SECS", "0")]).run_time();
    }
}
