//! Berth's SFTP server (protocol version 3 as OpenSSH speaks it, with its
//! `posix-rename`, `hardlink` and `fsync` extensions), over `russh-sftp`'s protocol codec.
//!
//! It runs inside the container, as an exec process of the container's own (its mount
//! namespace, user, capabilities, seccomp filter and cgroup), statically linked and
//! bind-mounted read-only at `/.berth/sftp-server`: every path is the container's, resolved
//! by the container's kernel view, and no path can reach the host. It answers one client on
//! stdin/stdout and ends with it.

mod attrs;
mod extensions;
mod handler;
mod paths;

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Serves SFTP on stdin/stdout until the client closes the stream.
pub fn run_on_stdio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (done, ended) = tokio::sync::oneshot::channel();
        let stdio = Stdio {
            io: tokio::io::join(input(), output()),
            _done: done,
        };
        russh_sftp::server::run(stdio, handler::Sftp::new()).await;
        // The codec runs in a task of its own; it drops the stream when the client is gone.
        let _ = ended.await;
    });
    Ok(())
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// stdin: read straight from the FIFO containerd gives an exec process (tokio's `stdin()`
/// hands every read to a blocking thread, which halves the throughput), else as a file.
fn input() -> Reader {
    use std::os::fd::AsFd;
    let fifo = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(tokio::net::unix::pipe::Receiver::from_file);
    match fifo {
        Ok(r) => Box::new(r),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// stdout, the same way.
fn output() -> Writer {
    use std::os::fd::AsFd;
    let fifo = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(tokio::net::unix::pipe::Sender::from_file);
    match fifo {
        Ok(w) => Box::new(w),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

/// stdin and stdout as one stream that says when the server let go of it.
struct Stdio {
    io: tokio::io::Join<Reader, Writer>,
    _done: tokio::sync::oneshot::Sender<()>,
}

impl AsyncRead for Stdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
