//! First start with a join token instead of a certificate: make a P-256 key here, send its
//! public half and the token to the coordinator's `POST /compute/hosts/enroll`, check the CA
//! that comes back against the one the token pins, and write key (0600), certificate and CA
//! where the config says. The private key never leaves the host.

use crate::config::CoordinatorConfig;
use base64::Engine;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("enroll_url {0:?} must look like http://host:port")]
    Url(String),
    #[error("the enrollment token is not readable: {0}")]
    Token(String),
    #[error("enrollment request to {url}: {message}")]
    Request { url: String, message: String },
    #[error("coordinator refused the enrollment ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("the CA the coordinator sent is not the one the token names")]
    WrongCa,
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("key generation: {0}")]
    Key(String),
}

pub(crate) fn write(path: &Path, data: &str, mode: u32) -> Result<(), EnrollError> {
    let err = |source| EnrollError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The CA fingerprint the token pins (its payload is read, not verified: it is our own token).
fn pinned_ca(token: &str) -> Result<String, EnrollError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(EnrollError::Token("not a JWT".into()))?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| EnrollError::Token(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| EnrollError::Token(e.to_string()))?;
    v["ca"]
        .as_str()
        .map(str::to_string)
        .ok_or(EnrollError::Token("no CA pin".into()))
}

/// One HTTP/1.1 POST of a JSON body; returns status and body.
async fn post(url: &str, body: &str) -> Result<(u16, String), EnrollError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| EnrollError::Url(url.into()))?;
    let (authority, base) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let path = format!("/{}/compute/hosts/enroll", base.trim_matches('/')).replace("//", "/");
    let fail = |message: String| EnrollError::Request {
        url: url.to_string(),
        message,
    };
    let mut conn = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("no HTTP answer".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("no status".into()))?;
    Ok((status, body.to_string()))
}

/// Enrolls if there is a token and no certificate yet; a no-op otherwise.
pub async fn ensure(c: &CoordinatorConfig) -> Result<(), EnrollError> {
    let (Some(token), false) = (c.enroll_token.as_deref(), c.cert.exists()) else {
        return Ok(());
    };
    let url = c
        .enroll_url
        .as_deref()
        .ok_or_else(|| EnrollError::Url(String::new()))?;
    let pin = pinned_ca(token)?;
    let key = rcgen::KeyPair::generate().map_err(|e| EnrollError::Key(e.to_string()))?;
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key_raw());
    let body = serde_json::json!({"token": token, "public_key": public}).to_string();
    let (status, resp) = post(url, &body).await?;
    if status != 201 {
        return Err(EnrollError::Refused { status, body: resp });
    }
    let v: serde_json::Value = serde_json::from_str(&resp).map_err(|e| EnrollError::Refused {
        status,
        body: e.to_string(),
    })?;
    let cert = v["certificate"].as_str().unwrap_or_default();
    let ca = v["ca_certificate"].as_str().unwrap_or_default();
    let got = berth_shared::ids::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ca.as_bytes()).as_ref(),
    );
    if got != pin || cert.is_empty() {
        return Err(EnrollError::WrongCa);
    }
    write(&c.key, &key.serialize_pem(), 0o600)?;
    write(&c.ca_cert, ca, 0o644)?;
    // The certificate last: its presence means enrollment is complete.
    write(&c.cert, cert, 0o644)?;
    tracing::info!(cert = %c.cert.display(), "enrolled: certificate received from the coordinator");
    Ok(())
}
