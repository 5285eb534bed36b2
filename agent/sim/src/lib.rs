//! Simulated agent hosts: real QUIC + mutual-TLS clients, each with its own certificate from
//! the cluster CA, speaking the real agent protocol through the agent's own link code
//! ([`berth_link`]): hello with the inventory, heartbeats, status reports, and the reports a
//! real agent sends for each applied spec after a configurable delay. Nothing on the
//! coordinator's side can tell them from agents; what they do not have is containerd.
//!
//! Used by `berth-fleet-bench` (thousands of hosts against a release coordinator) and as the
//! in-process fake agent of coordinator tests that need no containerd.

mod fleet;
mod host;

pub use fleet::{Fleet, FleetConfig, SimError};
pub use host::SimHost;
