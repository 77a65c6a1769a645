//! TCP echo server on tokio, for comparison with eventmux's `echo` example: a
//! `current_thread` runtime (one thread, like the reactor), one task per connection that
//! reads into a 64 KiB buffer and `write_all`s it back, `TCP_NODELAY` on (eventmux's
//! default).
//!
//!     cargo run --release --example tokio_echo [ADDR]      # default 127.0.0.1:7012
//!
//! `scripts/compare.sh` runs it beside `echo` and `mio_echo` under `echo_load`.

use std::io::{self, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The same as eventmux's default read size.
const READ_BUFFER: usize = 64 * 1024;

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

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7012".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&addr).await?;
        println!("listening on {}", listener.local_addr()?);
        io::stdout().flush()?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        // A reset by the peer ends only its own task.
                        let _ = echo(stream).await;
                    });
                }
                // EMFILE and the like: report and go on, as the other servers do.
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
}
