//! systemd readiness (`Type=notify`): one datagram to `$NOTIFY_SOCKET`, if systemd set it.
//! Both programs need exactly this and nothing more, so no systemd crate.

/// Sends `state` (e.g. `READY=1`, `STOPPING=1`) to systemd; a no-op outside systemd.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    if path.as_os_str().to_string_lossy().starts_with('@') {
        // Abstract sockets need Linux-only addressing; systemd uses a path by default.
        tracing::debug!("abstract NOTIFY_SOCKET is not supported");
        return;
    }
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to(state.as_bytes(), &path));
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = %path.display(), "cannot notify systemd");
    }
}
