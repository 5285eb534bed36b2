//! The registry side of images, for both programs: the coordinator lists what registries hold
//! (`catalog`, `tags`), the agent pulls (`manifest`, `blob`). Owns: [`tls`] (the system trust
//! store plus a registry's own CA), [`http`] (one GET over TCP or TLS with a timeout on every
//! step and redirects followed), [`auth`] (basic and the distribution token flow), and
//! [`distribution`] (the v2 API on top, with every manifest and blob checked against its digest).
//!
//! Plain HTTP is only spoken to a registry marked `insecure`; credentials go only to the
//! registry's own host (never along a redirect) and never into an error's text.

pub mod auth;
pub mod distribution;
pub mod http;
pub mod tls;

pub use berth_shared::images::{Credentials, RegistryAccess};
pub use distribution::{Blob, Fetched, Manifest, Registry};

/// Why talking to a registry failed, told apart as a user needs them told apart.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry address {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("registry {registry} is plain HTTP and not marked insecure")]
    NotInsecure { registry: String },
    #[error("CA certificates for {registry}: {reason}")]
    BadCa { registry: String, reason: String },
    #[error("GET {url}: cannot connect: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("GET {url}: TLS error: {source}")]
    Tls { url: String, source: std::io::Error },
    #[error("GET {url}: HTTP: {source}")]
    Http { url: String, source: hyper::Error },
    #[error("GET {url}: no answer within {secs} s ({step})")]
    Timeout {
        url: String,
        step: &'static str,
        secs: u64,
    },
    #[error("GET {url}: unauthorised ({status}){}", if *.sent_credentials { "; the credentials were refused" } else { "; no credentials are configured for this registry" })]
    Unauthorised {
        url: String,
        status: u16,
        sent_credentials: bool,
    },
    #[error("GET {url}: not found")]
    NotFound { url: String },
    #[error("GET {url}: {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: more than {max} redirects")]
    Redirects { url: String, max: usize },
    #[error("token from {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("{what} {url}: {source}")]
    Json {
        what: &'static str,
        url: String,
        source: serde_json::Error,
    },
    #[error("{url}: larger than {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("index {url} has no linux/{arch} manifest")]
    NoPlatform { url: String, arch: String },
    #[error("manifest {url}: index nesting is too deep")]
    TooDeep { url: String },
    #[error("manifest {url}: {reason}")]
    BadManifest { url: String, reason: &'static str },
}

impl RegistryError {
    /// A short reason for a container's `status_reason`.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unauthorised { .. } | RegistryError::Token { .. } => "unauthorised",
            RegistryError::NotFound { .. } => "not found",
            RegistryError::Tls { .. } | RegistryError::BadCa { .. } => "TLS error",
            RegistryError::DigestMismatch { .. } => "digest mismatch",
            RegistryError::Timeout { .. } => "timed out",
            RegistryError::Connect { .. } => "unreachable",
            _ => "registry error",
        }
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    format!("sha256:{}", berth_shared::ids::hex(d.as_ref()))
}

/// A digest computed chunk by chunk.
pub struct Hasher(aws_lc_rs::digest::Context);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> String {
        format!(
            "sha256:{}",
            berth_shared::ids::hex(self.0.finish().as_ref())
        )
    }
}
