//! What a command fails with, each on one readable line, and its exit status: 2 for a usage
//! error, 1 for everything else (the API said no, the network failed, a file was unreadable).

use berth_shared::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// No login and no BERTH_API / BERTH_TOKEN.
    #[error("not logged in: run `berth login --api URL --token-stdin`, or set BERTH_API and BERTH_TOKEN")]
    NoLogin,
    /// The API answered an error.
    #[error("{}", api_line(*.status, .body))]
    Api { status: u16, body: Box<ErrorBody> },
    /// The API answered something that is not its JSON.
    #[error("the API answered {status}: {text}")]
    Unexpected { status: u16, text: String },
    #[error("cannot reach the API at {api}: {source}")]
    Http {
        api: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("WebSocket {what}: {source}")]
    WebSocket {
        what: &'static str,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Api { body, .. } if matches!(**body, ErrorBody::NotFound))
    }
}

/// `422 invalid: name: is required; memory_mb: must be between 256 and 8192`.
fn api_line(status: u16, body: &ErrorBody) -> String {
    let what = match body {
        ErrorBody::Unauthenticated => "the token is missing, expired or not valid here".to_string(),
        ErrorBody::NotFound => "not found".to_string(),
        ErrorBody::Internal => "the API failed (see its log)".to_string(),
        ErrorBody::MethodNotAllowed => "method not allowed".to_string(),
        ErrorBody::OverQuota { detail } => format!(
            "over quota: {} would be {}, at most {}",
            detail.dimension, detail.requested, detail.max
        ),
        ErrorBody::Invalid { details } => {
            let fields: Vec<String> = details
                .iter()
                .map(|(f, msgs)| format!("{f}: {}", msgs.join(", ")))
                .collect();
            format!("invalid: {}", fields.join("; "))
        }
        ErrorBody::Forbidden { message }
        | ErrorBody::ContainerNotRunning { message }
        | ErrorBody::Conflict { message }
        | ErrorBody::BadRequest { message }
        | ErrorBody::UnsupportedMediaType { message }
        | ErrorBody::PayloadTooLarge { message }
        | ErrorBody::Unavailable { message }
        | ErrorBody::NotRunning { message }
        | ErrorBody::Timeout { message }
        | ErrorBody::PreconditionFailed { message }
        | ErrorBody::RateLimited { message } => {
            let kind = serde_json::to_value(body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{}: {message}", kind.replace('_', " "))
        }
    };
    format!("{what} ({status})")
}
