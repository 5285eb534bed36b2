//! Container logs: [`driver`] writes them (a process of its own under containerd's shim),
//! [`reader`] reads and follows them for the coordinator's logs endpoints.

pub mod driver;
pub mod reader;
