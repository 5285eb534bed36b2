//! The API over HTTP and WebSockets with the login's token: JSON in, JSON or the API's error
//! out, every list walked through all its pages.

use crate::config::Login;
use crate::error::CliError;
use berth_shared::api::ErrorBody;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Client {
    http: reqwest::Client,
    pub api: String,
    token: String,
}

impl Client {
    pub fn new(login: &Login) -> Client {
        Client {
            http: reqwest::Client::new(),
            api: login.api.clone(),
            token: login.token.clone(),
        }
    }

    /// `method path` with an optional JSON body and headers; the answer's JSON (`Null` if it
    /// has none), or the API's error.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|source| CliError::Http {
            api: self.api.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|source| CliError::Http {
            api: self.api.clone(),
            source,
        })?;
        if (200..300).contains(&status) {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Err(CliError::Api {
                status,
                body: Box::new(body),
            }),
            Err(_) => Err(CliError::Unexpected { status, text }),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        self.send(reqwest::Method::POST, path, body, &[]).await
    }

    /// Every item of a paged list (`field` of each page), following `next_cursor`.
    pub async fn all(&self, path: &str, field: &str) -> Result<Vec<Value>, CliError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = match &cursor {
                Some(c) => {
                    self.get(&format!("{path}{sep}limit=1000&cursor={c}"))
                        .await?
                }
                None => self.get(&format!("{path}{sep}limit=1000")).await?,
            };
            if let Some(items) = page[field].as_array() {
                out.extend(items.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// A WebSocket to `path` (query allowed), the token in the header.
    pub async fn websocket(&self, path: &str) -> Result<Socket, CliError> {
        let url = format!("{}{path}", self.api)
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let ws_err = |what| {
            move |e| CliError::WebSocket {
                what,
                source: Box::new(e),
            }
        };
        let mut req = url.into_client_request().map_err(ws_err("request"))?;
        let bearer = format!("Bearer {}", self.token)
            .parse()
            .map_err(|_| CliError::Other("the token is not a header value".into()))?;
        req.headers_mut().insert("authorization", bearer);
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ws),
            // The API's refusal (401, 404, 409…) comes as the handshake's answer.
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let text = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                match serde_json::from_str::<ErrorBody>(&text) {
                    Ok(body) => Err(CliError::Api {
                        status,
                        body: Box::new(body),
                    }),
                    Err(_) => Err(CliError::Unexpected { status, text }),
                }
            }
            Err(e) => Err(ws_err("connect")(e)),
        }
    }
}

/// The next text message of a socket (`None` when it closed).
pub async fn next_text(ws: &mut Socket) -> Result<Option<String>, CliError> {
    while let Some(m) = ws.next().await {
        match m.map_err(|e| CliError::WebSocket {
            what: "read",
            source: Box::new(e),
        })? {
            Message::Text(t) => return Ok(Some(t.to_string())),
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}
