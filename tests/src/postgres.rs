//! A PostgreSQL server of one test's own (`start_postgres` of `scripts/lib.sh`, in the test's
//! directory, on a free port), for tests that stop and crash the database under a running
//! coordinator without disturbing the shared test server.

use crate::net::free_tcp_port;
use crate::run;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    pub dir: PathBuf,
    pub port: u16,
    /// Admin address (key=value form) of the `postgres` database.
    pub admin: String,
}

fn lib_sh(call: &str) -> Result<String> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib.sh");
    run(Command::new("bash")
        .arg("-c")
        .arg(format!(". {}; {call}", lib.display())))
}

impl Postgres {
    pub fn start(dir: &Path) -> Result<Postgres> {
        let port = free_tcp_port()?;
        let admin = lib_sh(&format!("start_postgres {} {port}", dir.display()))?
            .trim()
            .to_string();
        Ok(Postgres {
            dir: dir.to_path_buf(),
            port,
            admin,
        })
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint; the
    /// next start replays the WAL).
    pub fn crash(&self) -> Result<()> {
        let bin = "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)";
        lib_sh(&format!(
            "runuser -u berth-pg -- {bin}/pg_ctl -D {}/data -m immediate -w stop",
            self.dir.display()
        ))
        .map(drop)
    }

    /// Starts it again on the same port.
    pub fn restart(&self) -> Result<()> {
        lib_sh(&format!(
            "start_postgres {} {} >/dev/null",
            self.dir.display(),
            self.port
        ))
        .map(drop)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = lib_sh(&format!("stop_postgres {}", self.dir.display()));
    }
}
