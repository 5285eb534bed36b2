//! The `berth` CLI against the real coordinator, agent and containerd: login, create (waits
//! for running), ls (table and JSON), exec (status, stdin), ssh through OpenSSH, console in a
//! real PTY (keys, echo, resize, detach, the terminal restored), logs -f, ls --watch, ingress
//! and curl through it, rm; a bad token, an unknown container and a refused quota each one
//! line and exit 1; Ctrl-C during a create that cannot finish leaves the container as the API
//! has it.

use anyhow::{ensure, Context, Result};
use berth_tests::{bin, Cluster, User};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `berth` with its config in `home` (no BERTH_API/BERTH_TOKEN from outside).
fn berth(home: &Path, args: &[&str], stdin: &[u8]) -> Result<Output> {
    let mut child = Command::new(bin("berth"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("BERTH_API")
        .env_remove("BERTH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("berth")?;
    child.stdin.take().context("stdin")?.write_all(stdin)?;
    Ok(child.wait_with_output()?)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `berth ARGS` that must succeed: its stdout.
fn ok(home: &Path, args: &[&str]) -> Result<String> {
    let out = berth(home, args, b"")?;
    ensure!(
        out.status.success(),
        "berth {args:?}: {:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

/// `berth ARGS` left running, its stdout piped.
fn spawn_berth(home: &Path, args: &[&str]) -> Result<std::process::Child> {
    Ok(Command::new(bin("berth"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .stdout(Stdio::piped())
        .spawn()?)
}

/// What `child` printed until it printed `want` (30 s at most); the child is killed then.
async fn output_until(child: &mut std::process::Child, want: &str) -> Result<String> {
    let mut stdout = child.stdout.take().context("stdout")?;
    let want = want.to_string();
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !text(&buf).contains(&want) {
            if std::io::Read::read(&mut stdout, &mut byte).unwrap_or(0) == 0 {
                break;
            }
            buf.push(byte[0]);
        }
        text(&buf)
    });
    let out = tokio::time::timeout(Duration::from_secs(30), read).await;
    let _ = child.kill();
    let _ = child.wait();
    Ok(out??)
}

/// A Python driver of `berth` in a real pseudo-terminal (its own session, so the PTY is its
/// controlling terminal and Ctrl-C is a real SIGINT).
const PTY: &str = r#"
import os, pty, select, signal, struct, sys, termios, fcntl, time, json
argv, steps = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
def size(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
size(30, 100)
seen = b""
def until(want, limit=30):
    global seen
    end = time.time() + limit
    while want.encode() not in seen:
        if time.time() > end:
            sys.exit("timed out waiting for %r; saw %r" % (want, seen[-2000:]))
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                sys.exit("the terminal closed before %r; saw %r" % (want, seen[-2000:]))
for kind, arg in steps:
    if kind == "until": until(arg)
    elif kind == "send": os.write(fd, arg.encode())
    elif kind == "resize": size(*arg); os.kill(pid, signal.SIGWINCH)
    elif kind == "sleep": time.sleep(arg)
    elif kind == "attrs":
        a = termios.tcgetattr(fd)
        print("ECHO" if a[3] & termios.ECHO else "noecho", "ICANON" if a[3] & termios.ICANON else "raw")
_, status = os.waitpid(pid, 0)
try:
    while True:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r: break
        seen += os.read(fd, 65536)
except OSError:
    pass
a = termios.tcgetattr(fd)
print("after:", "ECHO" if a[3] & termios.ECHO else "noecho", "ICANON" if a[3] & termios.ICANON else "raw")
print("exit:", os.waitstatus_to_exitcode(status))
sys.stdout.write(seen.decode(errors="replace"))
"#;

fn in_pty(home: &Path, args: &[&str], steps: Value) -> Result<String> {
    let mut argv = vec![bin("berth").display().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = Command::new("python3")
        .args([
            "-c",
            PTY,
            &serde_json::to_string(&argv)?,
            &steps.to_string(),
        ])
        .env("XDG_CONFIG_HOME", home)
        .env("TERM", "xterm")
        .output()?;
    ensure!(
        out.status.success(),
        "pty driver: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

fn home(c: &Cluster) -> PathBuf {
    c.dir.join("cli-home")
}

async fn logged_in(c: &Cluster, user: &User) -> Result<PathBuf> {
    let h = home(c);
    std::fs::create_dir_all(&h)?;
    let out = berth(
        &h,
        &["login", "--api", &c.api, "--token-stdin"],
        user.token.as_bytes(),
    )?;
    ensure!(out.status.success(), "login: {}", text(&out.stderr));
    let file = h.join("berth/config.toml");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file)?.permissions());
    ensure!(mode & 0o777 == 0o600, "the login is private: {mode:o}");
    Ok(h)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_drives_a_container_from_create_to_rm() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    let keys = c.dir.join("cli-keys");
    let (_, key_path) = alice.add_key_in("laptop", &keys).await?;
    let h = logged_in(&c, &alice).await?;
    ensure!(
        ok(&h, &["whoami"])?.contains("alice"),
        "whoami names the user"
    );

    // create waits until it runs, and says so.
    let out = ok(&h, &["create", "web", "--ssh", "--port", "8080"])?;
    ensure!(out.contains("web") && out.contains("running"), "{out}");
    let ls = ok(&h, &["ls"])?;
    ensure!(
        ls.lines().next().is_some_and(|l| l.starts_with("ID")) && ls.contains("running"),
        "{ls}"
    );
    let json: Value = serde_json::from_str(&ok(&h, &["ls", "--output", "json"])?)?;
    let id = json["containers"][0]["id"]
        .as_str()
        .context("id")?
        .to_string();
    ensure!(json["containers"][0]["name"] == "web", "{json}");

    // exec: the command's status is berth's, stdin goes in, stderr stays apart.
    let out = berth(
        &h,
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "cat; echo oops >&2; exit 3",
        ],
        b"piped in\n",
    )?;
    ensure!(out.status.code() == Some(3), "exit status {:?}", out.status);
    ensure!(
        text(&out.stdout) == "piped in\n" && text(&out.stderr) == "oops\n",
        "{out:?}"
    );

    // ssh with the system's OpenSSH client.
    let k = key_path.display().to_string();
    let out = berth(
        &h,
        &[
            "ssh",
            "web",
            "-i",
            &k,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "--",
            "echo",
            "over-ssh",
        ],
        b"",
    )?;
    ensure!(
        out.status.success() && text(&out.stdout).contains("over-ssh"),
        "ssh: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // console in a real terminal: echo, the size and a resize, Ctrl-] to detach.
    let out = in_pty(
        &h,
        &["console", "web"],
        serde_json::json!([
            ["until", "detach with Ctrl-]"],
            ["sleep", 0.5],
            ["attrs", null],
            ["send", "echo con''sole\r"],
            ["until", "console"],
            ["send", "stty size\r"],
            ["until", "30 100"],
            ["resize", [40, 120]],
            ["sleep", 0.5],
            ["send", "stty size\r"],
            ["until", "40 120"],
            ["send", "\u{1d}"],
            ["until", "detached"],
        ]),
    )?;
    ensure!(out.contains("noecho raw"), "raw while attached: {out}");
    ensure!(
        out.contains("after: ECHO ICANON") && out.contains("exit: 0"),
        "restored, exit 0: {out}"
    );

    // logs -f gets a line written after it started.
    let mut follow = spawn_berth(&h, &["logs", "web", "-f", "--tail", "0"])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ok(
        &h,
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo a-new-line > /proc/1/fd/1",
        ],
    )?;
    let line = output_until(&mut follow, "a-new-line").await?;
    ensure!(line.contains("a-new-line"), "logs -f: {line}");

    // ingress to a server in the container, through the host's forward.
    ok(
        &h,
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "mkdir -p /www && echo hello > /www/index.html && httpd -p 8080 -h /www",
        ],
    )?;
    let port = 8000 + (std::process::id() + 500) % 1000;
    ok(&h, &["ingress", "add", "web", &format!("{port}:8080")])?;
    ensure!(ok(&h, &["ingress", "ls", "web"])?.contains(&port.to_string()));
    let url = format!("http://127.0.0.1:{port}/");
    c.eventually(Duration::from_secs(30), "ingress answers", || async {
        Ok(reqwest::get(&url)
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false))
    })
    .await?;
    ensure!(reqwest::get(&url).await?.text().await? == "hello\n");

    // ls --watch follows the status stream: off a terminal, one line per change.
    let mut watch = spawn_berth(&h, &["ls", "--watch"])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ok(&h, &["stop", "web"])?;
    let seen = output_until(&mut watch, &format!("{id} stopped")).await?;
    ensure!(
        seen.contains(&format!("{id} stopped")),
        "ls --watch: {seen}"
    );
    ok(&h, &["start", "web"])?;

    // rm refuses a running container without --force.
    let out = berth(&h, &["rm", "web"], b"")?;
    ensure!(
        !out.status.success() && text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    ok(&h, &["rm", "--force", "web"])?;
    let (s, _) = alice
        .call("GET", &format!("/compute/containers/{id}"), None)
        .await?;
    ensure!(s == 404, "deleted: {s}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_one_line_with_exit_1_and_ctrl_c_leaves_things_as_they_are() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    alice.add_key("laptop").await?;
    let h = logged_in(&c, &alice).await?;
    let one_line = |o: &Output| {
        let e = text(&o.stderr);
        o.status.code() == Some(1) && e.trim().lines().count() == 1 && e.starts_with("error: ")
    };

    let unknown = berth(&h, &["show", "nope"], b"")?;
    ensure!(
        one_line(&unknown) && text(&unknown.stderr).contains("nope"),
        "{unknown:?}"
    );
    let usage = berth(&h, &["exec", "web"], b"")?;
    ensure!(
        usage.status.code() == Some(2),
        "a usage error is 2: {usage:?}"
    );

    // The default quota is 3 containers: the fourth is refused with the API's reason.
    for n in 0..3 {
        ok(&h, &["create", &format!("c{n}"), "--detach"])?;
    }
    let over = berth(&h, &["create", "c3", "--detach"], b"")?;
    ensure!(
        one_line(&over) && text(&over.stderr).contains("over quota"),
        "{over:?}"
    );
    ok(&h, &["rm", "--force", "c2"])?;

    // Ctrl-C while create waits for a container that cannot be placed (the host is cordoned).
    let ops = c.user_with_scope("ops", "compute.admin:*")?;
    ops.expect(
        200,
        "POST",
        &format!("/compute/hosts/{}/cordon", c.host_key),
        None,
    )
    .await?;
    let out = in_pty(
        &h,
        &["create", "waiting"],
        serde_json::json!([
            ["sleep", 2],
            ["send", "\u{3}"],
            ["until", "still being created"],
        ]),
    )?;
    ensure!(
        out.contains("after: ECHO ICANON") && out.contains("exit: 130"),
        "{out}"
    );
    let list = alice
        .expect(200, "GET", "/compute/containers", None)
        .await?;
    let waiting = list["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "waiting");
    ensure!(
        waiting.is_some_and(|w| w["status"] == "pending"),
        "left as the API has it: {list}"
    );
    ops.expect(
        200,
        "POST",
        &format!("/compute/hosts/{}/uncordon", c.host_key),
        None,
    )
    .await?;

    // A token the API does not take.
    let bad = berth(
        &h,
        &["login", "--api", &c.api, "--token", "not-a-token"],
        b"",
    )?;
    ensure!(
        one_line(&bad) && text(&bad.stderr).contains("token"),
        "{bad:?}"
    );
    Ok(())
}

/// `berth volumes`: create, a container with `--volume NAME:PATH`, data kept across the
/// container's rm and seen by the next one (`--volume NAME`, at `/mnt/<name>`), grow, detach,
/// rm — each as the API has it, and a refusal (rm while attached) one line and exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn volumes_from_the_command_line() -> Result<()> {
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    alice.add_key("laptop").await?;
    let h = logged_in(&c, &alice).await?;

    let out = ok(&h, &["volumes", "create", "pgdata", "--size", "1"])?;
    ensure!(out.starts_with("created volume vol"), "{out}");
    ok(&h, &["create", "db", "--volume", "pgdata:/data"])?;
    ok(&h, &["exec", "db", "--", "sh", "-c", "echo kept > /data/f"])?;
    let ls = ok(&h, &["volumes", "ls"])?;
    ensure!(
        ls.contains("pgdata") && ls.contains("attached") && ls.contains(":/data"),
        "{ls}"
    );

    let refused = berth(&h, &["volumes", "rm", "pgdata"], b"")?;
    let err = text(&refused.stderr);
    ensure!(
        refused.status.code() == Some(1) && err.lines().count() == 1 && err.contains("attached"),
        "rm while attached: {:?} {err}",
        refused.status
    );

    ok(&h, &["rm", "db", "--force"])?;
    c.eventually(Duration::from_secs(60), "the volume is free", || async {
        Ok(ok(&h, &["volumes", "ls"])?.contains("available"))
    })
    .await?;
    ok(&h, &["create", "db2", "--volume", "pgdata"])?;
    let f = ok(&h, &["exec", "db2", "--", "cat", "/mnt/pgdata/f"])?;
    ensure!(f == "kept\n", "the next container reads {f:?}");

    let out = ok(&h, &["volumes", "set", "pgdata", "--size", "2"])?;
    ensure!(out.contains("2 GB"), "{out}");
    let json: Value = serde_json::from_str(&ok(&h, &["volumes", "ls", "--output", "json"])?)?;
    ensure!(json["volumes"][0]["size_gb"] == 2, "{json}");
    let out = ok(&h, &["volumes", "detach", "db2", "pgdata"])?;
    ensure!(out.contains("detached") && out.contains("kept"), "{out}");
    let out = ok(&h, &["volumes", "rm", "pgdata"])?;
    ensure!(out.contains("removed volume"), "{out}");
    let json: Value = serde_json::from_str(&ok(&h, &["volumes", "ls", "--output", "json"])?)?;
    ensure!(json["volumes"] == serde_json::json!([]), "{json}");
    Ok(())
}
