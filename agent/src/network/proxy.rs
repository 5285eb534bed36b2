//! The gateway's HTTP/1.1 reverse proxy (hyper). Each request is routed on its own: by the
//! TLS server name on 443 (a `Host` naming another site gets `421`), by `Host` on 80. The
//! client's connection stays open across requests even when the container closes its own
//! after every response (busybox `httpd` does), so an HTTPS client pays for one handshake,
//! not one per request. Bodies stream both ways without buffering; `Upgrade` (WebSocket)
//! requests become a byte tunnel after the container's `101`. Hop-by-hop headers are dropped;
//! the container sees `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`.

use super::routes::{Route, RouteTable};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

type Body = BoxBody<Bytes, hyper::Error>;

/// How long a client may take to send a request head (also bounds idle keep-alive).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads from containers are this large, so bodies cross in few system calls and hand-offs.
const READ_BUF: usize = 256 * 1024;

/// Where a client connection came in.
pub struct Front {
    pub peer: IpAddr,
    pub https: bool,
    /// The TLS server name the client asked for (lower-cased), if any.
    pub sni: Option<String>,
}

/// Connections to containers; idle ones are kept a while for containers that keep alive.
#[derive(Clone)]
pub struct Upstream(Client<HttpConnector, Incoming>);

impl Default for Upstream {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .http1_read_buf_exact_size(READ_BUF)
            .set_host(false)
            .build(connector);
        Upstream(client)
    }
}

/// Serves HTTP/1.1 on one client connection (plain or already TLS-terminated) until it closes.
pub async fn serve<I>(io: I, routes: RouteTable, upstream: Upstream, front: Front)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let front = Arc::new(front);
    let service = hyper::service::service_fn(move |req| {
        handle(routes.clone(), upstream.clone(), front.clone(), req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "gateway: client connection ended");
    }
}

fn page(status: StatusCode, text: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(text)).map_err(|n| match n {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A host name as routes hold it: lower-cased, without a port.
pub fn host_name(authority: &str) -> String {
    let h = authority.trim();
    h.rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(h, |(h, _)| h)
        .to_ascii_lowercase()
}

fn request_host(req: &Request<Incoming>) -> Option<String> {
    let from_header = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    from_header
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .map(host_name)
}

async fn handle(
    routes: RouteTable,
    upstream: Upstream,
    front: Arc<Front>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let host = request_host(&req);
    if let (Some(sni), Some(host)) = (&front.sni, &host) {
        if sni != host {
            let text = format!("this connection is for {sni}, not {host}\n");
            return Ok(page(StatusCode::MISDIRECTED_REQUEST, text));
        }
    }
    let name = front.sni.clone().or(host).unwrap_or_default();
    let dest = match routes.lookup(front.https, &name) {
        Some(Route::To(dest)) => dest,
        Some(Route::Down) => {
            let text = format!("the container at {name} is failing its health check\n");
            return Ok(page(StatusCode::SERVICE_UNAVAILABLE, text));
        }
        None => {
            let text = format!("no container answers at {name}\n");
            return Ok(page(StatusCode::NOT_FOUND, text));
        }
    };
    let upgrade = requested_upgrade(req.headers());
    let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let original_host = req.headers().get(header::HOST).cloned();
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    add_forwarded(headers, &front, original_host);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{dest}{path}").parse::<Uri>() else {
        return Ok(page(StatusCode::BAD_REQUEST, "bad request target\n".into()));
    };
    *req.uri_mut() = uri;
    let mut resp = match upstream.0.request(req).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(%dest, error = %e, "gateway: container did not answer");
            let text = format!("the container at {name} did not answer\n");
            return Ok(page(StatusCode::BAD_GATEWAY, text));
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_side) = client_side else {
            let text = "the container switched protocols unasked\n".to_string();
            return Ok(page(StatusCode::BAD_GATEWAY, text));
        };
        let container_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(tunnel(client_side, container_side));
        return Ok(resp.map(|b| b.boxed()));
    }
    strip_hop_by_hop(resp.headers_mut());
    Ok(resp.map(|b| b.boxed()))
}

/// The protocol asked for, when the request is an upgrade (`Connection: upgrade` + `Upgrade`).
fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Removes headers that belong to one connection (RFC 9110 §7.6.1), including those the
/// `Connection` header names; hyper frames bodies again for the next hop.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

fn add_forwarded(headers: &mut HeaderMap, front: &Front, host: Option<HeaderValue>) {
    let peer = front.peer.to_string();
    let chain = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {peer}"),
        None => peer,
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert("x-forwarded-for", v);
    }
    let proto = if front.https { "https" } else { "http" };
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    match host {
        Some(h) => headers.insert("x-forwarded-host", h),
        None => headers.remove("x-forwarded-host"),
    };
}

/// After both sides agreed to switch protocols, bytes flow both ways until either closes.
async fn tunnel(client: hyper::upgrade::OnUpgrade, container: hyper::upgrade::OnUpgrade) {
    let (Ok(client), Ok(container)) = tokio::join!(client, container) else {
        return;
    };
    let (mut a, mut b) = (TokioIo::new(client), TokioIo::new(container));
    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
        tracing::debug!(error = %e, "gateway: upgraded connection ended");
    }
}
