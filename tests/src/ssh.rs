//! The real OpenSSH client against a cluster's agent: commands, sessions and forwards as a
//! user types them.

use crate::Cluster;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The OpenSSH client against the cluster's agent, with a known-hosts file of the test's own.
pub struct Ssh {
    port: u16,
    known_hosts: PathBuf,
}

impl Cluster {
    pub fn ssh(&self) -> Ssh {
        Ssh {
            port: self.ssh_port,
            known_hosts: self.dir.join("known_hosts"),
        }
    }
}

impl Ssh {
    /// `ssh` with `key` as `login` (host key checked strictly, or accepted when new), under
    /// `timeout 60`; arguments follow.
    pub fn cmd(&self, key: &Path, login: &str, strict: bool) -> Command {
        let mut c = self.client("ssh", "-p", key, strict);
        c.arg(format!("{login}@127.0.0.1"));
        c
    }

    /// `scp` with `key` (SFTP underneath, OpenSSH's default); the paths follow, a remote one
    /// written `<login>@127.0.0.1:<path>`.
    pub fn scp(&self, key: &Path) -> Command {
        self.client("scp", "-P", key, false)
    }

    /// `sftp -b -` with `key` as `login`: the batch comes on stdin.
    pub fn sftp(&self, key: &Path, login: &str) -> Command {
        let mut c = self.client("sftp", "-P", key, false);
        c.args(["-b", "-"]).arg(format!("{login}@127.0.0.1"));
        c
    }

    /// One of OpenSSH's clients with this server's port and known hosts, only `key`, never a
    /// prompt, under `timeout 60` (a hung session fails the test instead of hanging it).
    fn client(&self, program: &str, port_flag: &str, key: &Path, strict: bool) -> Command {
        let mut c = Command::new("timeout");
        c.args(["60", program, port_flag, &self.port.to_string(), "-i"])
            .arg(key)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-o")
            .arg(format!(
                "StrictHostKeyChecking={}",
                if strict { "yes" } else { "accept-new" }
            ));
        c
    }

    /// Runs `args` in the container, `stdin` fed in.
    pub fn run(&self, key: &Path, login: &str, args: &[&str], stdin: &[u8]) -> Result<Output> {
        self.run_with(self.cmd(key, login, false), args, stdin)
    }

    /// Waits until `true`, run with `key` as `login`, exits with `code` (255: refused).
    pub async fn wait_exit(
        &self,
        c: &Cluster,
        what: &str,
        key: &Path,
        login: &str,
        code: i32,
    ) -> Result<()> {
        c.eventually(WAIT, what, || async {
            Ok(self.run(key, login, &["true"], b"")?.status.code() == Some(code))
        })
        .await
    }

    /// Runs command `c` with `args` added and `stdin` fed in; returns its output.
    pub fn run_with(&self, mut c: Command, args: &[&str], stdin: &[u8]) -> Result<Output> {
        let mut child = c
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("ssh")?;
        let mut input = child.stdin.take().context("stdin")?;
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output()?;
        let _ = writer.join();
        Ok(out)
    }
}
