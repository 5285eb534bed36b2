//! Process plumbing that `berth-coordinator` and `berth-agent` share, so `berth-shared` can stay
//! wire types and pure functions.
//!
//! Owns: loading a config file (TOML, environment overrides, validation, exit 78 on a bad one:
//! `config`), TLS files and the rustls configurations built from them (`tls`), QUIC endpoints
//! (`quic`), the cluster CA's certificate shapes (`ca`), TCP accept loops that back off and cap connections (`listener`), JSON records in
//! sled trees (`records`), logging to stderr and the shutdown signal (`process`), and systemd
//! readiness (`sdnotify`); with feature `testing`, kill -9 loops for the stores' crash tests
//! (`killed`).
//!
//! Must not touch: what either program serves or stores — no routes, no record types, no
//! protocol messages. Everything here is mechanism a `main` or a server loop calls.

pub mod ca;
pub mod config;
#[cfg(feature = "testing")]
pub mod killed;
pub mod listener;
pub mod process;
pub mod quic;
pub mod records;
pub mod sdnotify;
pub mod tls;
