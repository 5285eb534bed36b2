//! A private registry as users have them: Debian's `docker-registry` serving HTTPS with a
//! certificate from a test CA and htpasswd basic auth. Images are pushed through a second,
//! plain instance on the same storage (the push side is not what is tested). The coordinator
//! holds the registry's CA and credentials; agents get them only with a spec that pulls.
//! Pull by tag and by digest run and record the digest; a wrong password fails the container
//! as unauthorised, a missing CA as a TLS error; the password appears in no API answer, log
//! line or file of the agent's or coordinator's state.

use anyhow::{Context, Result};
use berth_tests::registry::{push_image, Registry};
use berth_tests::{containerd, free_tcp_port, run, Cluster, User};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "pull-secret-7f3a9c";

fn openssl(dir: &Path, args: &[&str]) -> Result<String> {
    run(Command::new("openssl").current_dir(dir).args(args))
}

/// A CA and a certificate for 127.0.0.1 it signed.
fn certificates(dir: &Path) -> Result<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=berth-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "reg.key",
        "-out",
        "reg.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr)?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "reg.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "reg.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    )?;
    Ok(())
}

async fn failure(c: &Cluster, user: &User, body: Value) -> Result<Value> {
    let (s, created) = user.call("POST", "/compute/containers", Some(body)).await?;
    anyhow::ensure!(s == 201, "create: {s} {created}");
    let id = created["id"].as_str().context("id")?.to_string();
    let path = format!("/compute/containers/{id}");
    c.eventually(Duration::from_secs(60), "the container fails", || async {
        Ok(user.call("GET", &path, None).await?.1["status"] == "failed")
    })
    .await?;
    Ok(user.call("GET", &path, None).await?.1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_registry_over_tls_with_credentials() -> Result<()> {
    let mut c = Cluster::start().await?;
    let reg = c.dir.join("registry");
    std::fs::create_dir_all(&reg)?;
    certificates(&reg)?;
    let htpasswd = run(Command::new("htpasswd").args(["-Bbn", "berth", PASSWORD]))?;
    std::fs::write(reg.join("htpasswd"), htpasswd)?;
    let data = reg.join("data");
    let (push_port, port) = (free_tcp_port()?, free_tcp_port()?);
    let storage = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n",
        data.display()
    );
    let plain = Registry::start(
        &c,
        "push",
        &format!("{storage}http:\n  addr: 127.0.0.1:{push_port}\n"),
    )?;
    let push = format!("http://127.0.0.1:{push_port}");
    c.eventually(
        Duration::from_secs(20),
        "the push registry answers",
        || async {
            Ok(reqwest::get(format!("{push}/v2/"))
                .await
                .is_ok_and(|r| r.status() == 200))
        },
    )
    .await?;
    let digest = push_image(&c.dir, &push, "team/app", "v1").await?;
    for repo in ["team/second"] {
        push_image(&c.dir, &push, repo, "v1").await?;
    }
    drop(plain);
    let tls_config = format!(
        "{storage}http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {r}/reg.pem\n    key: {r}/reg.key\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {r}/htpasswd\n",
        r = reg.display()
    );
    let listening = || async { Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) };
    let mut tls = Registry::start(&c, "tls", &tls_config)?;
    c.eventually(
        Duration::from_secs(20),
        "the TLS registry listens",
        listening,
    )
    .await?;
    std::fs::write(reg.join("password"), format!("{PASSWORD}\n"))?;
    std::fs::write(reg.join("wrong"), "not-the-password\n")?;

    let base_config = std::fs::read_to_string(c.dir.join("coordinator.toml"))?;
    let images = "\n[images]\ndefault = \"berth.local/base:latest\"\nbuiltin = [{ name = \"base\", image = \"berth.local/base:latest\" }]\n";
    let configure = |c: &mut Cluster, password_file: &str, ca: bool| -> Result<()> {
        let ca = if ca {
            format!("ca_file = \"{}/ca.pem\"\n", reg.display())
        } else {
            String::new()
        };
        let text = format!(
            "{base_config}{images}\n[[images.registries]]\nurl = \"https://127.0.0.1:{port}\"\n{ca}username = \"berth\"\npassword_file = \"{}/{password_file}\"\n",
            reg.display()
        );
        std::fs::write(c.dir.join("coordinator.toml"), text)?;
        c.kill_coordinator()
    };
    configure(&mut c, "password", true)?;
    c.start_coordinator().await?;
    c.wait_agents(1).await?;

    let alice = c.user("alice")?;
    let key = alice.add_key("laptop").await?;
    let by_tag = format!("127.0.0.1:{port}/team/app:v1");
    let (s, listed) = alice.call("GET", "/compute/images", None).await?;
    assert_eq!(s, 200, "{listed}");
    assert!(
        listed
            .as_array()
            .context("list")?
            .iter()
            .any(|i| i["image"] == by_tag),
        "the registry's images are listed over TLS with credentials: {listed}"
    );

    // By tag: pulled over TLS with basic auth; the container records the digest it runs.
    let id = c
        .running_container(
            &alice,
            json!({"name": "tagged", "ssh_key_ids": [key], "image": by_tag}),
        )
        .await?;
    assert_eq!(
        containerd::exec(&c.namespace, &id, "cat /pulled.txt")?,
        "from the registry\n"
    );
    let (_, shown) = alice
        .call("GET", &format!("/compute/containers/{id}"), None)
        .await?;
    assert_eq!(shown["image_digest"], json!(digest), "{shown}");
    assert_eq!(shown["pull_policy"], "if-not-present", "{shown}");

    // By digest, with a policy of always (a digest cannot move: nothing new is fetched).
    let by_digest = format!("127.0.0.1:{port}/team/app@{digest}");
    let id2 = c
        .running_container(
            &alice,
            json!({"name": "pinned", "ssh_key_ids": [key], "image": by_digest, "pull_policy": "always"}),
        )
        .await?;
    let (_, shown2) = alice
        .call("GET", &format!("/compute/containers/{id2}"), None)
        .await?;
    assert_eq!(
        (shown2["image"].clone(), shown2["image_digest"].clone()),
        (json!(by_digest), json!(digest))
    );

    // `never` with an image the host does not hold.
    let f = failure(
        &c,
        &alice,
        json!({"name": "never", "ssh_key_ids": [key], "image": format!("127.0.0.1:{port}/team/second:v1"), "pull_policy": "never"}),
    )
    .await?;
    let why = f["status_reason"].as_str().unwrap_or_default();
    assert!(why.contains("pull_policy is never"), "{f}");
    let gone = format!("/compute/containers/{}", f["id"].as_str().context("id")?);
    let (s, body) = alice.call("DELETE", &gone, None).await?;
    assert!(s == 200 || s == 202 || s == 204, "{s} {body}");

    // Misconfigured, the coordinator says so on create (it checks the image in the registry).
    let second = format!("127.0.0.1:{port}/team/second:v1");
    let create = json!({"name": "refused", "ssh_key_ids": [key], "image": second});
    for (file, ca, expect) in [
        ("wrong", true, "credentials were refused"),
        ("password", false, "TLS error"),
    ] {
        configure(&mut c, file, ca)?;
        c.start_coordinator().await?;
        let (s, body) = alice
            .call("POST", "/compute/containers", Some(create.clone()))
            .await?;
        assert_eq!(s, 503, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(expect), "{expect}: {body}");
    }

    // The registry's password changes after the coordinator listed it: the agent's pull is
    // refused and the container fails, unauthorised.
    configure(&mut c, "password", true)?;
    c.start_coordinator().await?;
    c.wait_agents(1).await?;
    let (s, _) = alice.call("GET", "/compute/images", None).await?;
    assert_eq!(s, 200);
    let rotated = run(Command::new("htpasswd").args(["-Bbn", "berth", "a-new-password"]))?;
    std::fs::write(reg.join("htpasswd"), rotated)?;
    drop(tls);
    tls = Registry::start(&c, "tls", &tls_config)?;
    c.eventually(
        Duration::from_secs(20),
        "the TLS registry listens again",
        listening,
    )
    .await?;
    let f = failure(&c, &alice, create).await?;
    let why = f["status_reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("unauthorised") && why.contains("credentials were refused"),
        "{f}"
    );
    drop(tls);

    // The password is nowhere but in its file: not in answers, events, logs or state on disk.
    let mut answers = String::new();
    for cid in [&id, &id2] {
        for path in [
            format!("/compute/containers/{cid}"),
            format!("/compute/containers/{cid}/events"),
        ] {
            answers.push_str(&alice.call("GET", &path, None).await?.1.to_string());
        }
    }
    answers.push_str(
        &alice
            .call("GET", "/compute/containers", None)
            .await?
            .1
            .to_string(),
    );
    assert!(
        !answers.contains(PASSWORD),
        "an API answer holds the password"
    );
    for log in ["berth-agent", "berth-coordinator"] {
        assert!(
            !c.read_log(log).contains(PASSWORD),
            "{log}'s log holds the password"
        );
    }
    let found = Command::new("grep")
        .args(["-rlaF", PASSWORD])
        .arg(c.agent_data().join("state"))
        .arg(c.agent_data().join("logs"))
        .arg(c.dir.join("coordinator-db"))
        .output()?;
    // grep's 1: read everything, found nothing (0: found; 2: could not read).
    assert_eq!(
        found.status.code(),
        Some(1),
        "files hold the password: {} {}",
        String::from_utf8_lossy(&found.stdout),
        String::from_utf8_lossy(&found.stderr)
    );
    Ok(())
}
