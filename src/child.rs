//! Child processes as handles: what [`Reactor::spawn`](crate::Reactor::spawn) returns
//! ([`ChildHandles`]: the process and its pipes) and how a callback tells which of a
//! child's pipes it is for ([`ChildStdio`]).
//!
//! One handler serves the whole child. The process itself is a handle of
//! [`Kind::Process`](crate::Kind::Process) (a pidfd underneath, Linux 5.3+): its exit comes
//! to [`Handler::on_exit`](crate::Handler::on_exit) with the `ExitStatus`, once the child
//! has been reaped (no SIGCHLD handler, no zombie) and every pipe of it has closed, so all
//! of its output has been delivered first. Each pipe the `Command` asked for
//! (`Stdio::piped()`) is a stream handle whose callbacks go to the same handler;
//! [`Context::stdio`](crate::Context::stdio) says which pipe a callback is for.

use crate::Token;

/// The handles of a spawned child, from [`Reactor::spawn`](crate::Reactor::spawn) or
/// [`Context::child`](crate::Context::child).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::process::{Command, Stdio};
/// use eventmux::{Handler, Reactor};
///
/// struct Quiet;
/// impl Handler for Quiet {}
///
/// let mut reactor = Reactor::new()?;
/// let child = reactor.spawn(Command::new("true").stdout(Stdio::piped()), Quiet)?;
/// assert!(child.stdout().is_some());
/// assert!(child.stdin().is_none()); // not piped: inherited, as the Command said
/// reactor.run()?; // returns once the child has exited and its pipe has closed
/// # Ok(()) }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChildHandles {
    pub(crate) pid: u32,
    pub(crate) process: Token,
    pub(crate) stdin: Option<Token>,
    pub(crate) stdout: Option<Token>,
    pub(crate) stderr: Option<Token>,
}

impl ChildHandles {
    /// The child's process id.
    ///
    /// ```
    /// # fn check(child: eventmux::ChildHandles) {
    /// println!("started pid {}", child.pid());
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process handle: it hears `on_exit`, and
    /// [`signal_child`](crate::Context::signal_child) through it reaches the child.
    ///
    /// ```
    /// # fn check(reactor: &mut eventmux::Reactor, child: eventmux::ChildHandles) {
    /// if let Some(mut process) = reactor.handle(child.process()) {
    ///     let _ = process.signal_child(libc::SIGTERM);
    /// }
    /// # }
    /// ```
    pub fn process(&self) -> Token {
        self.process
    }

    /// The handle writing to the child's standard input, if the `Command` piped it.
    /// Closing it gives the child end of file.
    ///
    /// ```
    /// # fn check(reactor: &mut eventmux::Reactor, child: eventmux::ChildHandles) {
    /// if let Some(mut stdin) = child.stdin().and_then(|t| reactor.handle(t)) {
    ///     let _ = stdin.send(b"input for the child\n");
    ///     stdin.close(); // flushes, then the child reads end of file
    /// }
    /// # }
    /// ```
    pub fn stdin(&self) -> Option<Token> {
        self.stdin
    }

    /// The handle reading the child's standard output, if the `Command` piped it.
    ///
    /// ```
    /// # fn check(child: eventmux::ChildHandles) {
    /// let piped = child.stdout().is_some();
    /// # let _ = piped; }
    /// ```
    pub fn stdout(&self) -> Option<Token> {
        self.stdout
    }

    /// The handle reading the child's standard error, if the `Command` piped it.
    ///
    /// ```
    /// # fn check(child: eventmux::ChildHandles) {
    /// let piped = child.stderr().is_some();
    /// # let _ = piped; }
    /// ```
    pub fn stderr(&self) -> Option<Token> {
        self.stderr
    }

    /// Which of the child's pipes `token` is (`None`: the process handle, or not this
    /// child's).
    ///
    /// ```
    /// # fn check(child: eventmux::ChildHandles, token: eventmux::Token) {
    /// use eventmux::ChildStdio;
    /// if child.stdio_of(token) == Some(ChildStdio::Stderr) {
    ///     println!("a diagnostic");
    /// }
    /// # }
    /// ```
    pub fn stdio_of(&self, token: Token) -> Option<ChildStdio> {
        [
            (self.stdin, ChildStdio::Stdin),
            (self.stdout, ChildStdio::Stdout),
            (self.stderr, ChildStdio::Stderr),
        ]
        .into_iter()
        .find(|(t, _)| *t == Some(token))
        .map(|(_, stdio)| stdio)
    }
}

/// One of a child's standard streams; [`Context::stdio`](crate::Context::stdio) tells a
/// callback which one it is for.
///
/// ```
/// use eventmux::{ChildStdio, Context, Handler};
///
/// struct Build;
/// impl Handler for Build {
///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
///         let from = match ctx.stdio() {
///             Some(ChildStdio::Stderr) => "err",
///             _ => "out",
///         };
///         println!("[{from}] {}", String::from_utf8_lossy(line));
///     }
/// }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChildStdio {
    /// The child's standard input (the reactor's end writes).
    Stdin,
    /// The child's standard output.
    Stdout,
    /// The child's standard error.
    Stderr,
}
