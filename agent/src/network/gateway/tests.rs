//! The gateway against real loopback sockets: containers are played by small servers that,
//! like busybox `httpd`, answer one request per connection and close.

use super::*;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one HTTP message (head, then a `content-length` body) from `s`.
async fn read_message<R: AsyncRead + Unpin>(s: &mut R) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed mid-head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (head, body)
}

/// A container: answers each connection's one request with `name`, the request head it got
/// and its body length, then closes. An `Upgrade` request gets `101` and an echo.
async fn container(name: &'static str) -> SocketAddrV4 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let SocketAddr::V4(addr) = l.local_addr().unwrap() else {
        unreachable!()
    };
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (head, body) = read_message(&mut s).await;
                if head.contains("\r\nupgrade: echo") {
                    let ok = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
                    s.write_all(ok.as_bytes()).await.unwrap();
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    return;
                }
                let text = format!("{name}\n{head}body {}\n", body.len());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\nkeep-alive: x\r\n\r\n{text}",
                    text.len()
                );
                s.write_all(reply.as_bytes()).await.unwrap();
            });
        }
    });
    addr
}

/// A plain-HTTP gateway with `a.test` and `b.test` routed to two containers and `down.test`
/// to a port nobody listens on.
async fn gateway() -> SocketAddr {
    let gw = Gateway::default();
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let SocketAddr::V4(down) = closed.local_addr().unwrap() else {
        unreachable!()
    };
    drop(closed);
    let mut routes = Routes::default();
    routes.http.insert("a.test".into(), container("A").await);
    routes.http.insert("b.test".into(), container("B").await);
    routes.http.insert("down.test".into(), down);
    gw.set(routes);
    let l = Listener::bind((Ipv4Addr::LOCALHOST, 0).into(), MAX_CONNECTIONS)
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(gw.serve_http(l));
    addr
}

async fn get(s: &mut TcpStream, host: &str, extra: &str) -> (String, String) {
    let req = format!("GET /x?y=1 HTTP/1.1\r\nhost: {host}\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let (head, body) = read_message(s).await;
    (head, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn one_client_connection_serves_many_requests_each_routed_by_host() {
    let mut s = TcpStream::connect(gateway().await).await.unwrap();
    let extra = "connection: keep-alive, x-secret\r\nx-secret: 1\r\nx-forwarded-for: 192.0.2.7\r\n";
    let (head, body) = get(&mut s, "A.test:80", extra).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        !head.contains("connection: close") && !head.contains("keep-alive"),
        "{head}"
    );
    assert!(body.starts_with("A\nget /x?y=1 http/1.1\r\n"), "{body}");
    assert!(body.contains("host: a.test:80\r\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 192.0.2.7, 127.0.0.1\r\n"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto: http\r\n"), "{body}");
    assert!(body.contains("x-forwarded-host: a.test:80\r\n"), "{body}");
    assert!(
        !body.contains("x-secret") && !body.contains("keep-alive"),
        "{body}"
    );
    // Same connection, another site; then unknown and unreachable names get pages.
    let (_, body) = get(&mut s, "b.test", "").await;
    assert!(body.starts_with("B\n"), "{body}");
    let (head, body) = get(&mut s, "nobody.test", "").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert_eq!(body, "no container answers at nobody.test\n");
    let (head, _) = get(&mut s, "down.test", "").await;
    assert!(head.starts_with("http/1.1 502"), "{head}");
    let (_, body) = get(&mut s, "a.test", "").await;
    assert!(body.starts_with("A\n"), "{body}");
}

#[tokio::test]
async fn request_bodies_stream_to_the_container() {
    let mut s = TcpStream::connect(gateway().await).await.unwrap();
    let body = vec![7u8; 3 << 20];
    let head = format!(
        "POST /up HTTP/1.1\r\nhost: a.test\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(head.as_bytes()).await.unwrap();
        w.write_all(&body).await.unwrap();
    };
    let ((), (head, reply)) = tokio::join!(send, read_message(&mut r));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.ends_with(&format!("body {}\n", 3 << 20)), "{reply}");
}

#[tokio::test]
async fn upgrades_turn_into_a_tunnel() {
    let mut s = TcpStream::connect(gateway().await).await.unwrap();
    let req = "GET /ws HTTP/1.1\r\nhost: a.test\r\nconnection: Upgrade\r\nupgrade: echo\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let (head, _) = read_message(&mut s).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    s.write_all(b"ping over the tunnel").await.unwrap();
    let mut back = [0u8; 20];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping over the tunnel");
}

#[test]
fn host_names_lose_ports_and_case() {
    assert_eq!(
        proxy::host_name("Abc12345.Berth.Test:80"),
        "abc12345.berth.test"
    );
    assert_eq!(proxy::host_name("a.test"), "a.test");
    assert_eq!(proxy::host_name("a.test:"), "a.test:");
}
