//! The binaries' thread options, from outside: `loadgen --threads T` splits its
//! connections over T threads and still ends with the messages per second alone on the
//! last line, and `tokio_echo --threads N` serves on a multi-thread runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread;

use loadgen::{ServerStats, TokioEcho};

/// Runs `loadgen` with `args` against a tokio echo server on `workers` threads in this
/// process; returns its output and how many connections the server accepted.
fn loadgen_against(workers: usize, args: &[&str]) -> (Output, u64) {
    let server = TokioEcho::with_workers("127.0.0.1:0", workers).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.stopper();
    let stats = Arc::new(ServerStats::default());
    let serving = thread::spawn({
        let stats = stats.clone();
        move || server.run(stats)
    });
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg(addr.to_string())
        .args(args)
        .output()
        .unwrap();
    stop();
    serving.join().unwrap().unwrap();
    (output, stats.accepted())
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn threads_share_the_connections_and_the_last_line_stays_the_rate() {
    let (output, accepted) = loadgen_against(
        2,
        &[
            "--conns",
            "7",
            "--threads",
            "3",
            "--secs",
            "0.3",
            "--warmup",
            "0.1",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(accepted, 7);
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].contains(", 7 connections on 3 threads, 64 B messages, depth 1,"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("echoed "), "{lines:?}");
    let rate: u64 = lines[2].parse().unwrap();
    assert!(rate > 0);
}

#[test]
fn one_thread_prints_what_it_always_did() {
    let (output, accepted) = loadgen_against(1, &["--conns", "2", "--secs", "0.2", "--depth", "4"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(accepted, 2);
    let lines = stdout_lines(&output);
    assert!(
        lines[0].contains(", 2 connections, 64 B messages, depth 4, "),
        "{lines:?}"
    );
    assert!(lines[2].parse::<u64>().unwrap() > 0);
}

#[test]
fn a_failing_thread_fails_the_run_without_hanging_the_others() {
    // Nobody listens here (the listener is closed at once): every thread fails to connect.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            &addr.to_string(),
            "--conns",
            "4",
            "--threads",
            "2",
            "--secs",
            "0.2",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("loadgen: thread 0: "));
}

#[test]
fn too_many_threads_is_a_bad_command_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["127.0.0.1:9", "--conns", "2", "--threads", "3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--threads 3 must be between 1 and --conns (2)"),
        "{stderr}"
    );
    assert!(stderr.contains("[--threads T (1)]"), "{stderr}");
}

#[test]
fn tokio_echo_serves_on_worker_threads() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokio_echo"))
        .args(["127.0.0.1:0", "--threads", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    // A runtime with 3 workers has 3 threads named after it (Linux names are in /proc).
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .unwrap()
        .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap())
        .collect();
    let workers = names
        .iter()
        .filter(|name| name.trim() == "tokio-echo")
        .count();
    for _ in 0..4 {
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"hello").unwrap();
        let mut echo = [0; 5];
        client.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"hello");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(workers, 3, "{names:?}");
}

#[test]
fn tokio_echo_refuses_a_bad_thread_count() {
    for bad in ["0", "two"] {
        let output = Command::new(env!("CARGO_BIN_EXE_tokio_echo"))
            .args(["127.0.0.1:0", "--threads", bad])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("usage: tokio_echo"));
    }
}
