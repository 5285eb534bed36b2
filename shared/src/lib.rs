//! Wire types shared by `berth-coordinator` and `berth-agent`.
//!
//! Owns: the public API's JSON shapes (`api`), the agent<->coordinator protocol (`protocol`),
//! ids, input validation, the instance-type catalog, SSH public-key parsing, time and
//! duration formats, config-file helpers and TLS file loading.
//!
//! Must not touch: the network, containerd, sled or any server state. Everything here is
//! pure data and pure functions so both programs (and the tests) agree on one definition —
//! except `sdnotify`, the one datagram to systemd both programs send when ready.

pub mod api;
pub mod catalog;
pub mod config;
pub mod ids;
pub mod images;
pub mod prom;
pub mod protocol;
pub mod sdnotify;
pub mod sshkey;
pub mod time;
pub mod tls;
pub mod validation;
