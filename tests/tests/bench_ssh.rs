//! The SSH benchmark `scripts/bench-ssh` runs (ignored in the test suite: it measures, it
//! asserts nothing about speed). Side by side in one run, with the same OpenSSH client and
//! cipher: Berth's SSH into a container and Debian's sshd on a loopback port serving the same
//! data from the host — 100 MiB `cat` out and in, `scp` of 100 MiB both ways, and the
//! keystroke round trip in a PTY. Prints a table; writes `BERTH_BENCH_OUT` (JSON).

use anyhow::{ensure, Context, Result};
use berth_tests::{free_tcp_port, run, Cluster};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const MIB: usize = 1024 * 1024;
const CIPHER: &str = "aes256-gcm@openssh.com";

/// One SSH server as the client sees it: how to reach it and where its copy of the data is.
struct Target {
    port: u16,
    login: String,
    /// The 100 MiB file, as a path on that server.
    file: String,
    /// A directory to write into, on that server.
    dir: String,
}

fn client(program: &str, port_flag: &str, port: u16, key: &Path, known: &Path) -> Command {
    let mut c = Command::new(program);
    c.args([port_flag, &port.to_string(), "-c", CIPHER, "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-o", "StrictHostKeyChecking=accept-new"]);
    c
}

/// Seconds one run of `cmd` takes, with `stdin` from a file when given; fails if it fails.
fn timed(mut cmd: Command, stdin: Option<&Path>) -> Result<f64> {
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f)?);
    }
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).output()?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(start.elapsed().as_secs_f64())
}

/// Best of three, in MiB/s for `mib`.
fn rate(mib: f64, mut once: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(once()?);
    }
    Ok(mib / best)
}

/// Median milliseconds from a byte typed to its echo, over `n` keystrokes in `ssh -tt … cat`.
fn keystrokes(mut cmd: Command, n: usize) -> Result<f64> {
    let mut child: Child = cmd
        .args(["-tt"])
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    let mut output = child.stdout.take().context("stdout")?;
    let mut byte = [0u8; 1];
    // The first keystroke also waits for the session to open.
    input.write_all(b"a")?;
    while output.read(&mut byte)? == 1 && byte[0] != b'a' {}
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let key = b'b' + (i % 20) as u8;
        let start = Instant::now();
        input.write_all(&[key])?;
        loop {
            ensure!(output.read(&mut byte)? == 1, "the session ended");
            if byte[0] == key {
                break;
            }
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    let _ = child.wait();
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// Debian's sshd on a loopback port, root's key the test key; killed on drop.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sshd(dir: &Path, port: u16, public_key: &Path) -> Result<Sshd> {
    std::fs::create_dir_all("/run/sshd")?;
    let host_key = dir.join("sshd_host_key");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key))?;
    let auth = dir.join("authorized_keys");
    std::fs::copy(public_key, &auth)?;
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nUsePAM no\nPidFile {}\nStrictModes no\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            host_key.display(),
            auth.display(),
            dir.join("sshd.pid").display()
        ),
    )?;
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stderr(std::fs::File::create(dir.join("sshd.log"))?)
        .spawn()
        .context("Debian's openssh-server (scripts/bench-ssh installs it)")?;
    Ok(Sshd(child))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: scripts/bench-ssh runs it"]
async fn bench() -> Result<()> {
    let c = Cluster::start().await?;
    let keys = c.dir.join("keys");
    let alice = c.user("alice")?;
    let (key, path) = alice.add_key_in("bench", &keys).await?;
    let body = json!({"name": "bench", "ssh_key_ids": [key], "ssh_enabled": true, "storage_gb": 2});
    let id = c.running_container(&alice, body).await?;
    let known = c.dir.join("known_hosts");
    let data = c.dir.join("data-100m");
    let mut bytes = vec![0u8; 100 * MIB];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    std::fs::write(&data, &bytes)?;
    let sshd_port = free_tcp_port()?;
    let _sshd = sshd(&c.dir, sshd_port, &path.with_extension("pub"))?;
    let host_dir = c.dir.join("sshd-in");
    std::fs::create_dir_all(&host_dir)?;
    let targets = [
        (
            "berth",
            Target {
                port: c.ssh_port,
                login: id.clone(),
                file: "/root/data".into(),
                dir: "/root".into(),
            },
        ),
        (
            "sshd",
            Target {
                port: sshd_port,
                login: "root".into(),
                file: data.display().to_string(),
                dir: host_dir.display().to_string(),
            },
        ),
    ];
    let ssh = |t: &Target| {
        let mut cmd = client("ssh", "-p", t.port, &path, &known);
        cmd.arg(format!("{}@127.0.0.1", t.login));
        cmd
    };
    let scp = |t: &Target| client("scp", "-P", t.port, &path, &known);
    // The container's copy of the data, sent once through its own SSH.
    let mut put = ssh(&targets[0].1);
    put.arg("cat > /root/data");
    timed(put, Some(&data))?;

    let mut figures = serde_json::Map::new();
    println!(
        "{:<26} {:>10} {:>10} {:>7}",
        "MiB/s (best of 3)", "berth", "sshd", "ratio"
    );
    type Run<'a> = Box<dyn Fn(&Target) -> Result<f64> + 'a>;
    let runs: Vec<(&str, Run)> = vec![
        (
            "cat_out",
            Box::new(|t: &Target| {
                let mut cmd = ssh(t);
                cmd.arg(format!("cat {}", t.file));
                rate(100.0, || timed(ssh_clone(&cmd), None))
            }),
        ),
        (
            "cat_in",
            Box::new(|t: &Target| {
                let mut cmd = ssh(t);
                cmd.arg(format!("cat > {}/in", t.dir));
                rate(100.0, || timed(ssh_clone(&cmd), Some(&data)))
            }),
        ),
        (
            "scp_down",
            Box::new(|t: &Target| {
                let mut cmd = scp(t);
                cmd.arg(format!("{}@127.0.0.1:{}", t.login, t.file))
                    .arg(c.dir.join("down"));
                rate(100.0, || timed(ssh_clone(&cmd), None))
            }),
        ),
        (
            "scp_up",
            Box::new(|t: &Target| {
                let mut cmd = scp(t);
                cmd.arg(&data)
                    .arg(format!("{}@127.0.0.1:{}/up", t.login, t.dir));
                rate(100.0, || timed(ssh_clone(&cmd), None))
            }),
        ),
    ];
    for (name, f) in &runs {
        let (b, s) = (f(&targets[0].1)?, f(&targets[1].1)?);
        println!("{name:<26} {b:>10.1} {s:>10.1} {:>7.2}", b / s);
        figures.insert(
            format!("{name}_mib_s"),
            json!({"berth": b, "sshd": s, "ratio": b / s}),
        );
    }
    let (b, s) = (
        keystrokes(ssh(&targets[0].1), 200)?,
        keystrokes(ssh(&targets[1].1), 200)?,
    );
    println!(
        "{:<26} {b:>10.2} {s:>10.2} {:>7.2}",
        "keystroke echo p50 ms",
        b / s
    );
    figures.insert(
        "keystroke_p50_ms".into(),
        json!({"berth": b, "sshd": s, "ratio": b / s}),
    );
    figures.insert("cipher".into(), json!(CIPHER));
    let out = std::env::var("BERTH_BENCH_OUT").unwrap_or_else(|_| "target/bench/ssh.json".into());
    if let Some(dir) = Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&figures)?)?;
    println!("written to {out}");
    Ok(())
}

/// A copy of `cmd` (program and arguments; stdio is set per run).
fn ssh_clone(cmd: &Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    c
}
