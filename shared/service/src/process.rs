//! What a program's `main` does around serving: logging set up once, and the signal that ends
//! the serving.

/// Logs to stderr at `RUST_LOG` (default `info`). Colours only on a terminal (journald shows
/// escape codes as they are); one JSON object per line with `BERTH_LOG_FORMAT=json`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("BERTH_LOG_FORMAT").is_ok_and(|v| v == "json") {
        b.json().flatten_event(true).init();
    } else {
        b.init();
    }
}

/// Resolves at SIGTERM (systemd's stop) or an interrupt (ctrl-c). When SIGTERM cannot be
/// listened for, it says so and never resolves.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
    }
}
