//! [`TokioEcho`]: the TCP echo server a tokio user would write, the peer eventmux's echo is
//! compared with: a `current_thread` runtime (one thread, like the reactor), one task per
//! connection that reads into a 64 KiB buffer and `write_all`s it back, `TCP_NODELAY` on
//! (eventmux's default). The echo benchmark runs it in a thread of its own; the
//! `tokio_echo` binary runs it as a process for `scripts/compare.sh`.
//!
//! [`TokioEcho::with_workers`] builds the same server on a `multi_thread` runtime with N
//! worker threads instead (tokio's default for a server on several cores: one accept task,
//! connection tasks spread over the workers and stolen between them), the peer of
//! eventmux's `ReactorGroup` in `scripts/scale.sh`.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use crate::ServerStats;

/// The same as eventmux's default read size.
const READ_BUFFER: usize = 64 * 1024;

/// A bound tokio echo server, not yet serving.
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use loadgen::{ServerStats, TokioEcho};
///
/// let server = TokioEcho::bind("127.0.0.1:0")?;
/// let addr = server.local_addr()?;
/// let stop = server.stopper();
/// let stats = Arc::new(ServerStats::default());
/// let serving = std::thread::spawn({
///     let stats = stats.clone();
///     move || server.run(stats)
/// });
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(b"ping")?;
/// let mut echo = [0; 4];
/// client.read_exact(&mut echo)?;
/// assert_eq!(&echo, b"ping");
/// stop();
/// serving.join().unwrap()?;
/// assert_eq!(stats.accepted(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TokioEcho {
    runtime: Runtime,
    listener: Arc<TcpListener>,
    /// Whether the accept task runs (from the first serve on).
    accepting: bool,
    stop: Arc<Notify>,
}

impl TokioEcho {
    /// Builds a `current_thread` runtime and binds the listener.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TokioEcho> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        TokioEcho::serve_on(runtime, addr)
    }

    /// Binds the listener with `workers` threads serving it: 1 is [`TokioEcho::bind`]
    /// exactly (a `current_thread` runtime, everything on the thread that calls
    /// [`TokioEcho::run`]); more builds a `multi_thread` runtime with that many worker
    /// threads (`run` then only waits to be stopped). 0 is an `InvalidInput` error.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use loadgen::{ServerStats, TokioEcho};
    ///
    /// let server = TokioEcho::with_workers("127.0.0.1:0", 2)?;
    /// let addr = server.local_addr()?;
    /// let stop = server.stopper();
    /// let serving = std::thread::spawn(move || server.run(Arc::new(ServerStats::default())));
    /// for _ in 0..3 {
    ///     let mut client = std::net::TcpStream::connect(addr)?;
    ///     client.write_all(b"ping")?;
    ///     let mut echo = [0; 4];
    ///     client.read_exact(&mut echo)?;
    ///     assert_eq!(&echo, b"ping");
    /// }
    /// stop();
    /// serving.join().unwrap()?;
    /// assert!(TokioEcho::with_workers("127.0.0.1:0", 0).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_workers(addr: impl ToSocketAddrs, workers: usize) -> io::Result<TokioEcho> {
        match workers {
            0 => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a tokio echo server needs at least one worker thread",
            )),
            1 => TokioEcho::bind(addr),
            workers => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("tokio-echo")
                    .enable_io()
                    .build()?;
                TokioEcho::serve_on(runtime, addr)
            }
        }
    }

    /// Binds the listener to be served by `runtime`.
    fn serve_on(runtime: Runtime, addr: impl ToSocketAddrs) -> io::Result<TokioEcho> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _runtime = runtime.enter();
            TcpListener::from_std(listener)?
        };
        Ok(TokioEcho {
            runtime,
            listener: Arc::new(listener),
            accepting: false,
            stop: Arc::new(Notify::new()),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What makes [`TokioEcho::run`] return, callable from any thread, before or after
    /// `run` starts.
    pub fn stopper(&self) -> impl FnOnce() + Send + Sync + 'static {
        let stop = self.stop.clone();
        // notify_one keeps a permit if nobody waits yet.
        move || stop.notify_one()
    }

    /// Serves until stopped, counting connections and errors in `stats`. On a
    /// `multi_thread` runtime the worker threads serve and this thread only waits.
    pub fn run(self, stats: Arc<ServerStats>) -> io::Result<()> {
        let mut server = self;
        let stop = server.stop.clone();
        server.serve_until(&stats, async move { stop.notified().await });
        // Dropping the runtime cancels the accept loop and every connection task.
        Ok(())
    }

    /// Serves until `until` completes and returns its output (on the calling thread, for a
    /// `current_thread` runtime). Connections stay open between calls, so a benchmark can
    /// warm up in one call and measure the next (`benches/instructions.rs`).
    pub fn serve_until<F: Future>(&mut self, stats: &Arc<ServerStats>, until: F) -> F::Output {
        if !self.accepting {
            self.accepting = true;
            let listener = self.listener.clone();
            self.runtime.spawn(accept_loop(listener, stats.clone()));
        }
        self.runtime.block_on(until)
    }
}

async fn accept_loop(listener: Arc<TcpListener>, stats: Arc<ServerStats>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                stats.record_accept();
                let stats = stats.clone();
                tokio::spawn(async move {
                    // A reset by the peer ends only its own task.
                    let result = echo(stream).await;
                    if let Err(e) = &result {
                        stats.record_error(e);
                    }
                    stats.record_close(result.is_ok());
                });
            }
            // EMFILE and the like: report and go on, as the other servers do.
            Err(e) => stats.record_error(format_args!("accept: {e}")),
        }
    }
}

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..n]).await?;
    }
}
