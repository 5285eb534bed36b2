//! Zero-copy TCP relay for the ingress: bytes move socket → pipe → socket with `splice(2)`, so
//! they never cross into user space. Each direction runs until its source says EOF, then
//! half-closes its destination (as `copy_bidirectional` does); an error in either direction
//! ends both.

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use std::io;
use std::os::fd::OwnedFd;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe capacity asked for; the kernel may give less (then `splice` just moves less per call).
const PIPE_SIZE: i32 = 1024 * 1024;

/// Relays both directions between `a` and `b` until both are done or one fails.
pub async fn relay(a: &TcpStream, b: &TcpStream) -> io::Result<()> {
    tokio::try_join!(one_way(a, b), one_way(b, a))?;
    Ok(())
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
}

fn pipe() -> io::Result<Pipe> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    // Larger pipes mean fewer system calls per megabyte; failure only costs speed.
    let size = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE))
        .or_else(|_| fcntl(&write, FcntlArg::F_GETPIPE_SZ))
        .unwrap_or(64 * 1024);
    Ok(Pipe {
        read,
        write,
        size: usize::try_from(size).unwrap_or(64 * 1024),
    })
}

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

async fn one_way(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let pipe = pipe()?;
    loop {
        // The pipe is empty here, so EAGAIN can only mean the socket has nothing yet.
        let n = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                splice(from, None, &pipe.write, None, pipe.size, FLAGS).map_err(io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            // Source finished: pass the half-close on; the other direction may go on.
            let _ = socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(&pipe.read, None, to, None, left, FLAGS).map_err(io::Error::from)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A relay between two loopback connections carries 8 MiB each way byte-exact and passes
    /// the half-close through.
    #[tokio::test]
    async fn relays_both_ways_and_half_closes() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            buf.reverse();
            s.write_all(&buf).await.unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        tokio::spawn(async move {
            let (inbound, _) = front.accept().await.unwrap();
            let outbound = TcpStream::connect(echo_addr).await.unwrap();
            relay(&inbound, &outbound).await.unwrap();
        });
        let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut client = TcpStream::connect(front_addr).await.unwrap();
        let (mut r, mut w) = client.split();
        let send = async {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let recv = r.read_to_end(&mut back);
        let ((), got) = tokio::join!(send, recv);
        got.unwrap();
        let mut want = data.clone();
        want.reverse();
        assert_eq!(back.len(), want.len());
        assert!(back == want, "relayed bytes differ");
    }
}
