//! Wire types shared by `berth-coordinator` and `berth-agent`.
//!
//! Owns: the public API's JSON shapes (`api`), the agent<->coordinator protocol (`protocol`,
//! with its length-prefixed frame codec over any `AsyncRead`/`AsyncWrite`), ids, request
//! bodies and their validation (`requests`, `validation`), the instance-type catalog, SSH
//! public-key parsing, time and duration formats, restart policies and health checks (`upkeep`), image references, volumes' shapes (`volumes`)
//! and the Prometheus text format.
//!
//! Must not touch: files, sockets, containerd, sled or any server state. Everything here is
//! pure data and pure functions so both programs (and the tests) agree on one definition. The
//! process plumbing both programs share (config files, TLS files, QUIC endpoints, listeners,
//! systemd readiness, logging) is `berth-service`'s.

pub mod api;
pub mod catalog;
pub mod ids;
pub mod images;
pub mod prom;
pub mod protocol;
pub mod requests;
pub mod runtimes;
pub mod sshkey;
pub mod time;
pub mod upkeep;
pub mod validation;
pub mod volumes;
