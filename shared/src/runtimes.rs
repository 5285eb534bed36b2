//! The OCI runtimes a container can run under, and a host can offer.

use serde::{Deserialize, Serialize};

/// An OCI runtime a host offers: runc (the default), or gVisor's `runsc` — a user-space
/// kernel between the container and the host's, for untrusted workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    #[default]
    Runc,
    Gvisor,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Gvisor => "gvisor",
        }
    }
}
