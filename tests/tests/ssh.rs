//! SSH into containers through the agent's russh server, driven by the real OpenSSH client:
//! commands and exit status, stdout/stderr, a PTY, 10 MB through stdin and back byte-exact,
//! login by id or name, every refusal (wrong key, other user's key, unknown container,
//! `ssh_enabled=false`, a deleted key), a persisted host key and a process that ends with its
//! client.

use anyhow::Result;
use berth_tests::{containerd, Cluster};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_into_a_container_with_openssh() -> Result<()> {
    let mut c = Cluster::start().await?;
    let keys = c.dir.join("keys");
    let alice = c.user("alice")?;
    let bob = c.user("bob")?;
    let (a_key, a_path) = alice.add_key_in("laptop", &keys).await?;
    let (_, a2_path) = alice.add_key_in("other", &keys).await?;
    let (_, b_path) = bob.add_key_in("bob", &keys).await?;
    let id = c
        .running_container(
            &alice,
            json!({"name": "app", "ssh_key_ids": [a_key], "ssh_enabled": true}),
        )
        .await?;
    let ssh = c.ssh();
    assert_eq!(
        alice.container(&id).await?["ssh_command"],
        json!(format!("ssh -p {} {id}@127.0.0.1", c.ssh_port))
    );

    // A command: stdout, stderr and exit status apart.
    let out = ssh.run(&a_path, &id, &["echo out; echo err >&2; exit 7"], b"")?;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    // The container's name works as the login too, and it is the container's shell.
    let out = ssh.run(&a_path, "app", &["hostname"], b"")?;
    assert_eq!(
        text(&out.stdout),
        format!("{id}\n"),
        "{}",
        text(&out.stderr)
    );

    // 10 MB through stdin and back, byte-exact.
    let mut big = vec![0u8; 10 * 1024 * 1024];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut big);
    let out = ssh.run(&a_path, &id, &["cat"], &big)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big, "10 MB round trip differs");

    // A PTY session (forced with -tt, driven through stdin).
    let mut cmd = ssh.cmd(&a_path, &id, false);
    cmd.arg("-tt").env("TERM", "xterm-256color");
    let out = ssh.run_with(cmd, &[], b"tty; echo T=$TERM; stty size; exit 3\n")?;
    let o = text(&out.stdout);
    assert!(o.contains("/dev/pts/"), "{o}");
    assert!(o.contains("T=xterm-256color"), "{o}");
    assert!(o.contains("24 80"), "{o}");
    assert_eq!(out.status.code(), Some(3), "{o}");

    // A command a signal ends: the signal, as sshd sends it (OpenSSH's client exits 255).
    let out = ssh.run(&a_path, &id, &["kill -TERM $$"], b"")?;
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));

    // The client's LANG and LC_* reach the shell (as sshd's AcceptEnv); PATH does not.
    let mut cmd = ssh.cmd(&a_path, &id, false);
    cmd.args(["-o", "SetEnv=LANG=C.UTF-8 LC_TIME=C PATH=/nowhere"]);
    let out = ssh.run_with(cmd, &["echo $LANG $LC_TIME $PATH"], b"")?;
    let o = text(&out.stdout);
    assert!(o.starts_with("C.UTF-8 C /"), "{o} {}", text(&out.stderr));
    assert!(!o.contains("/nowhere"), "{o}");

    // Refusals all look alike: key not chosen for it, another user's key, unknown container.
    for (key, login) in [
        (&a2_path, id.as_str()),
        (&b_path, id.as_str()),
        (&a_path, "nosuch00"),
    ] {
        let out = ssh.run(key, login, &["true"], b"")?;
        assert_eq!(out.status.code(), Some(255));
        assert!(
            text(&out.stderr).contains("Permission denied"),
            "{}",
            text(&out.stderr)
        );
    }

    // Closing the client ends the process in the container.
    let mut child = ssh
        .cmd(&a_path, &id, false)
        .args(["sleep 4321"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let ns = c.namespace.clone();
    c.eventually(WAIT, "sleep started", || async {
        Ok(containerd::exec(&ns, &id, "ps")?.contains("sleep 4321"))
    })
    .await?;
    // SIGTERM to `timeout`, which passes it on to ssh.
    berth_tests::run(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
    let _ = child.wait();
    c.eventually(WAIT, "sleep gone with its client", || async {
        Ok(!containerd::exec(&ns, &id, "ps")?.contains("sleep 4321"))
    })
    .await?;

    // The host key survives an agent restart (strict checking against the saved key).
    c.kill_agent()?;
    c.start_agent().await?;
    c.eventually(WAIT, "ssh after agent restart", || async {
        let out = ssh.run_with(ssh.cmd(&a_path, &id, true), &["echo back"], b"")?;
        Ok(text(&out.stdout) == "back\n")
    })
    .await?;

    // ssh_enabled=false refuses; true again lets in; deleting the key revokes it.
    let p = format!("/compute/containers/{id}/ssh");
    alice
        .call("PUT", &p, Some(json!({"ssh_enabled": false})))
        .await?;
    ssh.wait_exit(&c, "ssh disabled", &a_path, &id, 255).await?;
    assert!(alice.container(&id).await?.get("ssh_command").is_none());
    alice
        .call("PUT", &p, Some(json!({"ssh_enabled": true})))
        .await?;
    ssh.wait_exit(&c, "ssh enabled", &a_path, &id, 0).await?;
    alice
        .expect(200, "DELETE", &format!("/compute/ssh-keys/{a_key}"), None)
        .await?;
    ssh.wait_exit(&c, "deleted key refused", &a_path, &id, 255)
        .await?;
    Ok(())
}
