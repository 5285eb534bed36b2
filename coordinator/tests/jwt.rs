//! The JWT attack suite against the running API, in-process on port 0: tokens built by hand
//! (base64url of JSON, signatures through jsonwebtoken's own signer) with `alg: none`, an HS256
//! token signed with the RS256 public key as its secret (algorithm confusion), empty and wrong
//! keys, `exp` passed, `nbf` and `iat` in the future, `sub` missing, empty or unusable, claims
//! of the wrong type, malformed segments, a 1 MB token, and a token in `?token=` where only a
//! WebSocket upgrade may carry one. Every one is `401` (a 1 MB header may be `431`), never a
//! 5xx and never a 200; a well-made token next to each set proves the refusals are the
//! token's and not the set-up's.

mod common;

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::Coordinator;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SECRET: &str = "a-jwt-suite-secret-of-at-least-32-bytes!";
/// The leeway both coordinators are configured with.
const LEEWAY: u64 = 30;

/// A coordinator whose `[auth]` section is what `auth` writes, given its temp dir.
async fn coordinator(auth: impl FnOnce(&Path) -> Result<String>) -> Result<Coordinator> {
    common::start("", |d| Ok(format!("leeway_secs = {LEEWAY}\n{}", auth(d)?))).await
}

fn now() -> u64 {
    berth_shared::time::now_unix().0
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// `base64url(header).base64url(claims)`, the part a signature covers.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A token with exactly this header and these claims, signed with `key` as `alg`.
fn signed(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> Result<String> {
    let input = signing_input(header, claims);
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg)?;
    Ok(format!("{input}.{sig}"))
}

/// An HS256 token over `claims` with `secret`.
fn hs256(secret: &[u8], claims: &Value) -> Result<String> {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    signed(
        &header,
        claims,
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
}

fn valid_claims() -> Value {
    json!({"sub": "alice", "exp": now() + 600, "iat": now(), "nbf": now()})
}

/// `claims` with `key` set to `value` (`Value::Null` removes it).
fn with(mut claims: Value, key: &str, value: Value) -> Value {
    if let Some(map) = claims.as_object_mut() {
        if value.is_null() {
            map.remove(key);
        } else {
            map.insert(key.to_string(), value);
        }
    }
    claims
}

/// How the token travels.
#[derive(Clone, Copy, Debug)]
enum Via {
    Bearer,
    Cookie,
    /// `?token=` on a route that is not a WebSocket upgrade.
    Query,
}

impl Coordinator {
    /// The status of `GET /compute/containers` with `token` sent `via`; an `Err` only when no
    /// HTTP answer came at all.
    async fn status(&self, token: &str, via: Via) -> Result<u16> {
        let http = reqwest::Client::new();
        let url = format!("{}/compute/containers", self.api);
        let req = match via {
            Via::Bearer => http
                .get(url)
                .header("authorization", format!("Bearer {token}")),
            Via::Cookie => http
                .get(url)
                .header("cookie", format!("berth_token={token}")),
            Via::Query => http.get(url).query(&[("token", token)]),
        };
        Ok(req.send().await?.status().as_u16())
    }

    /// Every case is refused with `401` through the header (and the cookie, which the same
    /// verifier reads); returns how many were checked.
    async fn all_refused(&self, cases: &[(&str, String)]) -> Result<usize> {
        for (what, token) in cases {
            for via in [Via::Bearer, Via::Cookie] {
                let s = self.status(token, via).await?;
                ensure!(s == 401, "{what} ({via:?}) answered {s}, not 401");
            }
        }
        Ok(cases.len())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hs256_refuses_every_forged_malformed_or_untimely_token() -> Result<()> {
    let c = coordinator(|_| Ok(format!("secret = \"{SECRET}\""))).await?;
    let key = SECRET.as_bytes();

    // The controls: a well-made token, and one just inside the leeway, are accepted.
    let good = hs256(key, &valid_claims())?;
    for via in [Via::Bearer, Via::Cookie] {
        let s = c.status(&good, via).await?;
        ensure!(s == 200, "a valid token ({via:?}) answered {s}");
    }
    let skewed = with(valid_claims(), "iat", json!(now() + LEEWAY / 2));
    ensure!(c.status(&hs256(key, &skewed)?, Via::Bearer).await? == 200);
    let issued = c.svc.auth.issue("alice", Duration::from_secs(60), None)?;
    ensure!(c.status(&issued, Via::Bearer).await? == 200);

    let good_input = signing_input(&json!({"alg": "HS256", "typ": "JWT"}), &valid_claims());
    let none = |alg: &str| signing_input(&json!({"alg": alg, "typ": "JWT"}), &valid_claims());
    let payload = |claims: &Value| b64(claims.to_string().as_bytes());
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let (past, future) = (now() - 3600, now() + 3600);
    let cases = vec![
        // alg none, in every spelling, unsigned or with a stolen signature.
        ("alg none, no signature", format!("{}.", none("none"))),
        ("alg None, no signature", format!("{}.", none("None"))),
        ("alg NONE, no signature", format!("{}.", none("NONE"))),
        ("alg none, two segments", none("none")),
        (
            "alg none with a valid token's signature",
            format!(
                "{}.{}",
                none("none"),
                good.rsplit('.').next().context("signature")?
            ),
        ),
        ("alg missing", {
            let h = b64(br#"{"typ":"JWT"}"#);
            let input = format!("{h}.{}", payload(&valid_claims()));
            let sig = jsonwebtoken::crypto::sign(
                input.as_bytes(),
                &EncodingKey::from_secret(key),
                Algorithm::HS256,
            )?;
            format!("{input}.{sig}")
        }),
        // Keys: empty, wrong, a prefix of the right one; the signature stripped or altered.
        ("signed with an empty secret", hs256(b"", &valid_claims())?),
        (
            "signed with another secret",
            hs256(b"another-secret-of-at-least-32-bytes!!", &valid_claims())?,
        ),
        (
            "signed with a prefix of the secret",
            hs256(&key[..16], &valid_claims())?,
        ),
        ("signature stripped", format!("{good_input}.")),
        ("signature of another payload", {
            let sig = good.rsplit('.').next().context("signature")?;
            let claims = with(valid_claims(), "sub", json!("mallory"));
            format!("{header}.{}.{sig}", payload(&claims))
        }),
        (
            "HS512 with the right secret",
            signed(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &valid_claims(),
                &EncodingKey::from_secret(key),
                Algorithm::HS512,
            )?,
        ),
        // Time: expired, not yet valid, issued in the future (beyond the leeway).
        (
            "exp passed an hour ago",
            hs256(key, &with(valid_claims(), "exp", json!(past)))?,
        ),
        (
            "exp passed just beyond the leeway",
            hs256(key, &with(valid_claims(), "exp", json!(now() - LEEWAY - 5)))?,
        ),
        (
            "exp missing",
            hs256(key, &with(valid_claims(), "exp", Value::Null))?,
        ),
        (
            "exp a string",
            hs256(
                key,
                &with(valid_claims(), "exp", json!((now() + 600).to_string())),
            )?,
        ),
        (
            "nbf an hour ahead",
            hs256(key, &with(valid_claims(), "nbf", json!(future)))?,
        ),
        (
            "iat an hour ahead",
            hs256(key, &with(valid_claims(), "iat", json!(future)))?,
        ),
        (
            "iat just beyond the leeway",
            hs256(
                key,
                &with(valid_claims(), "iat", json!(now() + LEEWAY + 60)),
            )?,
        ),
        (
            "iat at the end of time",
            hs256(key, &with(valid_claims(), "iat", json!(u64::MAX)))?,
        ),
        // The subject.
        (
            "sub missing",
            hs256(key, &with(valid_claims(), "sub", Value::Null))?,
        ),
        (
            "sub empty",
            hs256(key, &with(valid_claims(), "sub", json!("")))?,
        ),
        (
            "sub a number",
            hs256(key, &with(valid_claims(), "sub", json!(42)))?,
        ),
        (
            "sub with a control character",
            hs256(key, &with(valid_claims(), "sub", json!("ali\nce")))?,
        ),
        (
            "sub of 129 characters",
            hs256(key, &with(valid_claims(), "sub", json!("a".repeat(129))))?,
        ),
        (
            "scopes of the wrong type",
            hs256(key, &with(valid_claims(), "scopes", json!("compute.admin")))?,
        ),
        // Malformed: bad base64, not JSON, wrong segment counts, nothing at all.
        ("bad base64 everywhere", "!!!.@@@.###".to_string()),
        (
            "bad base64 in the signature",
            format!("{good_input}.not*base64"),
        ),
        (
            "standard (not url-safe) base64 with padding",
            good.replace('-', "+").replace('_', "/") + "==",
        ),
        (
            "header not JSON",
            format!("{}.{}.x", b64(b"not json"), payload(&valid_claims())),
        ),
        ("claims not JSON", format!("{header}.{}.x", b64(b"[1,2"))),
        ("four segments", format!("{good}.extra")),
        ("one segment", "eyJhbGciOiJIUzI1NiJ9".to_string()),
        ("only dots", "..".to_string()),
        ("garbage", "garbage".to_string()),
    ];
    let checked = c.all_refused(&cases).await?;

    // Where the token travels: `?token=` counts only on a WebSocket upgrade.
    let s = c.status(&good, Via::Query).await?;
    ensure!(
        s == 401,
        "a valid token in ?token= on a plain route answered {s}"
    );
    let s = c.upgrade_status("/compute/ws", &good).await?;
    ensure!(
        s == 101,
        "a valid token in ?token= on the upgrade answered {s}"
    );
    for what in [
        "exp passed an hour ago",
        "alg none, no signature",
        "signed with an empty secret",
        "iat an hour ahead",
    ] {
        let (_, bad) = cases.iter().find(|(w, _)| *w == what).context(what)?;
        let s = c.upgrade_status("/compute/ws", bad).await?;
        ensure!(
            s == 401,
            "a {what} token in ?token= on the upgrade answered {s}"
        );
    }
    for header in [
        "Bearer".to_string(),
        "Bearer ".to_string(),
        format!("Basic {good}"),
        format!("Token {good}"),
        format!("Bearer {good} extra"),
    ] {
        let s = reqwest::Client::new()
            .get(format!("{}/compute/containers", c.api))
            .header("authorization", &header)
            .send()
            .await?
            .status()
            .as_u16();
        ensure!(s == 401, "Authorization {header:?} answered {s}");
    }
    ensure!(checked >= 30, "only {checked} cases");
    Ok(())
}

/// The status line's code of the answer to a raw HTTP/1.1 request `head` (which the
/// server may stop reading early), or `None` when the connection closed without one.
async fn raw_status(api: &str, head: String) -> Result<Option<u16>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = api.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut rx, mut tx) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may answer and close before it has read everything: not an error here.
        let _ = tx.write_all(head.as_bytes()).await;
        let _ = tx.flush().await;
        tx
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    ensure!(read.is_ok(), "no answer within 20 s");
    drop(writer.await);
    let line = String::from_utf8_lossy(&answer);
    Ok(line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_megabyte_token_is_refused_without_a_server_error() -> Result<()> {
    let c = coordinator(|_| Ok(format!("secret = \"{SECRET}\""))).await?;
    let claims = with(valid_claims(), "pad", json!("x".repeat(1 << 20)));
    let big = hs256(SECRET.as_bytes(), &claims)?;
    ensure!(big.len() > 1 << 20, "the token is {} bytes", big.len());
    let junk = "a".repeat(1 << 20);
    let mut answers = Vec::new();
    for (what, token) in [("signed", &big), ("junk", &junk)] {
        for (via, head) in [
            (
                "header",
                format!("GET /compute/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"),
            ),
            (
                "cookie",
                format!("GET /compute/containers HTTP/1.1\r\nHost: x\r\nCookie: berth_token={token}\r\n\r\n"),
            ),
            (
                "query",
                format!("GET /compute/containers?token={token} HTTP/1.1\r\nHost: x\r\n\r\n"),
            ),
            (
                "query of the upgrade",
                format!(
                    "GET /compute/ws?token={token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
                     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                ),
            ),
        ] {
            // Refused before it is read (431 for a header, 414 for a request line) or by the
            // verifier (401); never accepted, never a server error, never no answer at all.
            let s = raw_status(&c.api, head).await?;
            ensure!(
                matches!(s, Some(401 | 414 | 431)),
                "a 1 MB {what} token in the {via} answered {s:?}"
            );
            answers.push(format!("{what} in the {via}: {s:?}"));
        }
    }
    // And the server still answers.
    let good = hs256(SECRET.as_bytes(), &valid_claims())?;
    ensure!(
        c.status(&good, Via::Bearer).await? == 200,
        "after: {answers:?}"
    );
    eprintln!("1 MB tokens: {answers:?}");
    Ok(())
}

/// An RSA key pair as PEM files `<name>.key` (PKCS#8) and `<name>.pub` (SPKI) in `dir`.
fn rsa_pair(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let (private, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    std::fs::write(&private, kp.serialize_pem())?;
    std::fs::write(&public, kp.public_key_pem())?;
    Ok((private, public))
}

#[tokio::test(flavor = "multi_thread")]
async fn rs256_refuses_hs256_tokens_signed_with_its_public_key() -> Result<()> {
    let mut keys = None;
    let c = coordinator(|dir| {
        let (private, public) = rsa_pair(dir, "jwt")?;
        let (other, _) = rsa_pair(dir, "other")?;
        let section = format!(
            "algorithm = \"RS256\"\npublic_key_file = \"{}\"\nprivate_key_file = \"{}\"",
            public.display(),
            private.display()
        );
        keys = Some((private, public, other));
        Ok(section)
    })
    .await?;
    let (private, public, other) = keys.context("keys")?;
    let public_pem = std::fs::read(&public)?;
    let rs256 = |pem: &Path, claims: &Value| -> Result<String> {
        let key = EncodingKey::from_rsa_pem(&std::fs::read(pem)?)?;
        signed(
            &json!({"alg": "RS256", "typ": "JWT"}),
            claims,
            &key,
            Algorithm::RS256,
        )
    };

    // The controls: the server's own `issue` and a hand-made RS256 token are accepted.
    let issued = c.svc.auth.issue("alice", Duration::from_secs(60), None)?;
    ensure!(c.status(&issued, Via::Bearer).await? == 200);
    let good = rs256(&private, &valid_claims())?;
    ensure!(c.status(&good, Via::Bearer).await? == 200);

    let pem_text = String::from_utf8(public_pem.clone())?;
    let der = {
        let body: String = pem_text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD.decode(body)?
    };
    let cases = vec![
        // Algorithm confusion: HS256 with the public key, as the file and in other forms.
        (
            "HS256 signed with the public key PEM file",
            hs256(&public_pem, &valid_claims())?,
        ),
        (
            "HS256 signed with the trimmed public key PEM",
            hs256(pem_text.trim().as_bytes(), &valid_claims())?,
        ),
        (
            "HS256 signed with the public key DER",
            hs256(&der, &valid_claims())?,
        ),
        (
            "HS384 signed with the public key PEM file",
            signed(
                &json!({"alg": "HS384", "typ": "JWT"}),
                &valid_claims(),
                &EncodingKey::from_secret(&public_pem),
                Algorithm::HS384,
            )?,
        ),
        (
            "HS256 signed with an empty secret",
            hs256(b"", &valid_claims())?,
        ),
        // Other keys and algorithms.
        (
            "RS256 signed by another key pair",
            rs256(&other, &valid_claims())?,
        ),
        ("RS256 header over an HS256 signature", {
            let input = signing_input(&json!({"alg": "RS256", "typ": "JWT"}), &valid_claims());
            let sig = jsonwebtoken::crypto::sign(
                input.as_bytes(),
                &EncodingKey::from_secret(&public_pem),
                Algorithm::HS256,
            )?;
            format!("{input}.{sig}")
        }),
        (
            "alg none",
            format!(
                "{}.",
                signing_input(&json!({"alg": "none"}), &valid_claims())
            ),
        ),
        (
            "RS256 signature stripped",
            format!("{}.", good.rsplit_once('.').context("signature")?.0),
        ),
        // Claims, as for HS256, through the RS256 verifier.
        (
            "RS256 expired",
            rs256(&private, &with(valid_claims(), "exp", json!(now() - 3600)))?,
        ),
        (
            "RS256 nbf ahead",
            rs256(&private, &with(valid_claims(), "nbf", json!(now() + 3600)))?,
        ),
        (
            "RS256 iat ahead",
            rs256(&private, &with(valid_claims(), "iat", json!(now() + 3600)))?,
        ),
        (
            "RS256 sub empty",
            rs256(&private, &with(valid_claims(), "sub", json!("")))?,
        ),
        (
            "RS256 sub missing",
            rs256(&private, &with(valid_claims(), "sub", Value::Null))?,
        ),
    ];
    c.all_refused(&cases).await?;
    let s = c.upgrade_status("/compute/ws", &cases[0].1).await?;
    ensure!(s == 401, "the confused token on the upgrade answered {s}");
    Ok(())
}
