//! One GET to a registry (or where it redirects to) over TCP or TLS, on a connection of its
//! own: a pull is a handful of requests, and a connection per request keeps a stuck one from
//! holding the next. Every step has a timeout: connect (TCP and TLS), the answer's head, and
//! each piece of its body. Redirects (blob storage is often elsewhere) are followed; the
//! `Authorization` header goes only to the origin it was meant for.

use crate::RegistryError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST, LOCATION, USER_AGENT,
};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::Url;

/// How long a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answer's head, or the next piece of its body, may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How to reach one registry: TLS settings, and whether plain HTTP is allowed.
#[derive(Clone)]
pub struct Transport {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) insecure: bool,
}

/// An answer: status, headers, the URL it came from, and its body to read.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub url: String,
    body: hyper::body::Incoming,
}

impl Response {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        loop {
            let frame = timeout(READ_TIMEOUT, self.body.frame())
                .await
                .map_err(|_| RegistryError::Timeout {
                    url: self.url.clone(),
                    step: "body",
                    secs: READ_TIMEOUT.as_secs(),
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(source)) => {
                    let url = self.url.clone();
                    return Err(RegistryError::Http { url, source });
                }
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body, refused past `max` bytes.
    pub async fn bytes(mut self, max: usize) -> Result<Vec<u8>, RegistryError> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            if out.len() + c.len() > max {
                let url = self.url.clone();
                return Err(RegistryError::TooLarge { url, max });
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn origin(u: &Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_string),
        u.port_or_known_default(),
    )
}

impl Transport {
    /// GETs `url` with `headers`, following redirects; `authorization` is sent to `url`'s
    /// origin only.
    pub async fn get(
        &self,
        url: &Url,
        headers: &[(HeaderName, String)],
        authorization: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let mut at = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let auth = authorization.filter(|_| origin(&at) == origin(url));
            let resp = self.once(&at, headers, auth).await?;
            if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let next = resp
                .header(LOCATION.as_str())
                .and_then(|l| at.join(l).ok())
                .ok_or_else(|| RegistryError::Status {
                    url: at.to_string(),
                    status: resp.status,
                })?;
            tracing::debug!(from = %at, to = %next, "registry redirect");
            at = next;
        }
        Err(RegistryError::Redirects {
            url: url.to_string(),
            max: MAX_REDIRECTS,
        })
    }

    async fn once(
        &self,
        url: &Url,
        headers: &[(HeaderName, String)],
        authorization: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let shown = url.to_string();
        let bad = |reason| RegistryError::BadUrl {
            url: shown.clone(),
            reason,
        };
        let tls = match url.scheme() {
            "https" => true,
            "http" if self.insecure => false,
            "http" => {
                return Err(RegistryError::NotInsecure {
                    registry: url.host_str().unwrap_or_default().to_string(),
                })
            }
            _ => return Err(bad("not http or https")),
        };
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        let (host, name) = match url.host() {
            Some(url::Host::Domain(d)) => (
                d.to_string(),
                ServerName::try_from(d.to_string()).map_err(|_| bad("not a DNS name"))?,
            ),
            Some(url::Host::Ipv4(ip)) => {
                (ip.to_string(), ServerName::from(std::net::IpAddr::V4(ip)))
            }
            Some(url::Host::Ipv6(ip)) => {
                (ip.to_string(), ServerName::from(std::net::IpAddr::V6(ip)))
            }
            None => return Err(bad("no host")),
        };
        let connect = async {
            let tcp = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|source| RegistryError::Connect {
                    url: shown.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = if tls {
                let s = tokio_rustls::TlsConnector::from(self.tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|source| RegistryError::Tls {
                        url: shown.clone(),
                        source,
                    })?;
                Box::new(s)
            } else {
                Box::new(tcp)
            };
            Ok::<_, RegistryError>(io)
        };
        let timed_out = |step| RegistryError::Timeout {
            url: shown.clone(),
            step,
            secs: CONNECT_TIMEOUT.as_secs(),
        };
        let io = timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| timed_out("connect"))??;
        let http = |source| RegistryError::Http {
            url: shown.clone(),
            source,
        };
        let (mut sender, conn) = timeout(
            CONNECT_TIMEOUT,
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io)),
        )
        .await
        .map_err(|_| timed_out("handshake"))?
        .map_err(http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let mut req = hyper::Request::get(path)
            .header(HOST, authority)
            .header(USER_AGENT, concat!("berth/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(a) = authorization {
            let mut v = HeaderValue::from_str(a).map_err(|_| bad("credentials"))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let req = req.body(Empty::new()).map_err(|_| bad("not a request"))?;
        let resp = timeout(READ_TIMEOUT, sender.send_request(req))
            .await
            .map_err(|_| RegistryError::Timeout {
                url: shown.clone(),
                step: "answer",
                secs: READ_TIMEOUT.as_secs(),
            })?
            .map_err(http)?;
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            url: shown,
            body,
        })
    }
}
