//! The Ansible rollout: `--syntax-check` and `ansible-lint` pass, and a real run against
//! localhost (`ansible_connection=local`) into a throw-away root lays down binaries, configs
//! (valid per the programs' own `--check`), TLS material (keys 0600) issued by the cluster CA
//! on the coordinator, and the units — where the units expect them. A second run changes
//! nothing.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin_dir() -> PathBuf {
    std::env::var_os("BERTH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/debug"))
}

fn ansible(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(repo().join("ansible"))
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .with_context(|| format!("{} (apt packages ansible-core, ansible-lint)", args[0]))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "{args:?} failed:\n{text}");
    Ok(text)
}

/// `changed=N` of the play recap.
fn changed(recap: &str) -> Option<u32> {
    recap
        .lines()
        .filter(|l| l.contains("ok=") && l.contains("failed=0"))
        .find_map(|l| {
            l.split("changed=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

#[test]
fn playbook_lints_and_rolls_out_into_a_prefix() -> Result<()> {
    ansible(&[
        "ansible-playbook",
        "-i",
        "inventory.example.ini",
        "--syntax-check",
        "site.yml",
    ])?;
    ansible(&["ansible-lint", "--offline", "site.yml"])?;

    let root = std::env::temp_dir().join(format!("berth-ansible-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let r = root.display();
    let inventory = root.join("inventory.ini");
    std::fs::write(
        &inventory,
        format!(
            "[coordinator]\nlocalhost ansible_connection=local\n\n\
             [agents]\nlocalhost ansible_connection=local berth_host_key=edge-1 berth_region=test\n\n\
             [all:vars]\nansible_become=false\nansible_python_interpreter=/usr/bin/python3\n\
             berth_root={r}\nberth_bin_dir={}\nberth_sftp_server={sftp}\nberth_tls_dir={r}/fleet-tls\n\
             berth_coordinator_address=127.0.0.1:7443\nberth_coordinator_server_name=localhost\n",
            bin_dir().display(),
            sftp = berth_tests::sftp_server().display(),
        ),
    )?;
    let inv = inventory.display().to_string();
    let first = ansible(&["ansible-playbook", "-i", &inv, "site.yml"])?;
    assert!(changed(&first).unwrap_or(0) > 0, "{first}");
    let second = ansible(&["ansible-playbook", "-i", &inv, "site.yml"])?;
    assert_eq!(
        changed(&second),
        Some(0),
        "a second run changed something:\n{second}"
    );
    let sysctl = std::fs::read_to_string(root.join("etc/sysctl.d/60-berth-agent.conf"))?;
    assert!(sysctl.contains("\nnet.ipv4.tcp_tw_reuse = 1\n"), "{sysctl}");
    let sysctl = std::fs::read_to_string(root.join("etc/sysctl.d/60-berth-coordinator.conf"))?;
    assert!(
        sysctl.contains("\nnet.core.rmem_max = 8388608\n"),
        "{sysctl}"
    );

    assert!(
        root.join("usr/lib/berth/berth-sftp-server").is_file(),
        "the SFTP server is installed"
    );
    for (unit, program) in [
        ("berth-agent", "berth-agent"),
        ("berth-coordinator", "berth-coordinator"),
    ] {
        let text =
            std::fs::read_to_string(root.join(format!("etc/systemd/system/{unit}.service")))?;
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .context("ExecStart")?;
        let words: Vec<&str> = exec.split_whitespace().collect();
        let binary = root.join(words[0].trim_start_matches('/'));
        assert!(binary.is_file(), "{unit}: {} is not installed", words[0]);
        let config = words[words
            .iter()
            .position(|w| *w == "--config")
            .context("--config")?
            + 1];
        let config = root.join(config.trim_start_matches('/'));
        assert!(config.is_file(), "{unit}: {} is missing", config.display());
        let check: &[&str] = if program == "berth-agent" {
            &["--check"]
        } else {
            &["check"]
        };
        let out = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .args(check)
            .output()?;
        assert!(
            out.status.success(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (file, mode) in [
        ("etc/berth/tls/agent.key", 0o600),
        ("etc/berth/tls/agent.pem", 0o644),
        ("etc/berth/tls/ca.pem", 0o644),
        ("etc/berth/jwt.secret", 0o600),
    ] {
        let m = std::fs::metadata(root.join(file)).with_context(|| file.to_string())?;
        assert_eq!(m.permissions().mode() & 0o777, mode, "{file}");
    }
    // The agent's certificate is the one the coordinator's CA issued for it.
    assert_eq!(
        std::fs::read(root.join("etc/berth/tls/ca.pem"))?,
        std::fs::read(root.join("etc/berth/agents/edge-1/ca.pem"))?
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// `changed=N` summed over every host of the play recap (`None` if a host failed).
fn changed_everywhere(recap: &str) -> Option<u32> {
    let hosts: Vec<&str> = recap.lines().filter(|l| l.contains(" ok=")).collect();
    if hosts.is_empty() || hosts.iter().any(|l| !l.contains("failed=0")) {
        return None;
    }
    hosts
        .iter()
        .map(|l| {
            l.split("changed=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u32>()
                .ok()
        })
        .sum()
}

#[test]
fn two_coordinators_on_postgres_share_one_ca_and_key_and_agents_link_to_both() -> Result<()> {
    let root = std::env::temp_dir().join(format!("berth-ansible-ha-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let r = root.display();
    let local = "ansible_connection=local ansible_python_interpreter=/usr/bin/python3";
    let inventory = root.join("inventory.ini");
    std::fs::write(
        &inventory,
        format!(
            "[coordinator]\n\
             coord-1 {local} berth_root={r}/c1\n\
             coord-2 {local} berth_root={r}/c2\n\n\
             [agents]\nedge-1 {local} berth_root={r}/a berth_host_key=edge-1 berth_region=test\n\n\
             [postgres]\ndb-1 {local} berth_root={r}/db\n\n\
             [all:vars]\nansible_become=false\nberth_bin_dir={}\nberth_sftp_server={sftp}\nberth_tls_dir={r}/fleet-tls\n\
             berth_store_backend=postgres\n\
             berth_coordinator_addresses='[\"c1.example.com:7443\", \"c2.example.com:7443\"]'\n\
             berth_coordinator_address=c1.example.com:7443\n\
             berth_coordinator_server_name=coordinator.example.com\n",
            bin_dir().display(),
            sftp = berth_tests::sftp_server().display(),
        ),
    )?;
    let inv = inventory.display().to_string();
    let first = ansible(&["ansible-playbook", "-i", &inv, "site.yml"])?;
    assert!(changed_everywhere(&first).unwrap_or(0) > 0, "{first}");
    let second = ansible(&["ansible-playbook", "-i", &inv, "site.yml"])?;
    assert_eq!(
        changed_everywhere(&second),
        Some(0),
        "a second run changed something:\n{second}"
    );
    for file in [
        "etc/berth/jwt.secret",
        "etc/berth/tls/ca.pem",
        "etc/berth/tls/ca.key",
        "etc/berth/tls/coordinator.pem",
    ] {
        assert_eq!(
            std::fs::read(root.join("c1").join(file))?,
            std::fs::read(root.join("c2").join(file))?,
            "{file}: one cluster, one of it"
        );
    }
    let key = std::fs::metadata(root.join("c2/etc/berth/jwt.secret"))?;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read(root.join("c1/etc/berth/tls/ca.pem"))?,
        std::fs::read(root.join("a/etc/berth/tls/ca.pem"))?,
        "the agent trusts the cluster's CA"
    );
    // The database password, made once on the control machine, in both coordinators' URL.
    let password = std::fs::read_to_string(root.join("fleet-tls/postgres.password"))?;
    let url = format!("url = \"postgres://berth:{}@db-1/berth\"", password.trim());
    assert_eq!(password.trim().len(), 32);
    for c in ["c1", "c2"] {
        let config = root.join(c).join("etc/berth/coordinator.toml");
        let text = std::fs::read_to_string(&config)?;
        assert!(
            text.contains("backend = \"postgres\"") && text.contains(&url),
            "{text}"
        );
        let out = Command::new(bin_dir().join("berth-coordinator"))
            .arg("--config")
            .arg(&config)
            .arg("check")
            .output()?;
        assert!(
            out.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let agent = root.join("a/etc/berth/agent.toml");
    let text = std::fs::read_to_string(&agent)?;
    assert!(
        text.contains("addresses = [\"c1.example.com:7443\", \"c2.example.com:7443\"]"),
        "{text}"
    );
    let out = Command::new(bin_dir().join("berth-agent"))
        .arg("--config")
        .arg(&agent)
        .arg("--check")
        .output()?;
    assert!(
        out.status.success(),
        "agent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
