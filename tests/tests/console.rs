//! The web console in a real browser, against the real coordinator, agent and containerd:
//! headless Chromium driven by playwright-core (`coordinator/console/e2e/run.mjs`) signs in,
//! creates a container and sees it run without a reload, types in its terminal, follows its
//! logs, stops and deletes it; a second user never sees it; a cross-site form POST with the
//! session cookie is refused; an operator cordons a host. Screenshots land in `target/console-artifacts/`.
//!
//! Needs the built console (`build_console`), `node` and Debian's `chromium`: scripts/test
//! provides all three, and this test fails (never skips) without them.

use anyhow::{ensure, Context, Result};
use berth_tests::{console_dir, Cluster};
use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn the_console_drives_a_container_in_a_real_browser() -> Result<()> {
    ensure!(
        console_dir().join("index.html").is_file(),
        "no built console at {} (scripts/test builds it: build_console in scripts/lib.sh)",
        console_dir().display()
    );
    let c = Cluster::start().await?;
    let alice = c.user("alice")?;
    alice.add_key("laptop").await?;
    let bob = c.user("bob")?;
    let ops = c.user_with_scope("ops", "compute.admin:*")?;
    let host_key = c.host_key.clone();
    let console = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/console");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let api = c.api.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(console.join("e2e/run.mjs"))
            .env("BERTH_API", &api)
            .env("ALICE_TOKEN", &alice.token)
            .env("BOB_TOKEN", &bob.token)
            .env("OPS_TOKEN", &ops.token)
            .env("HOST_KEY", &host_key)
            .env("ARTIFACTS", &artifacts)
            .output()
    })
    .await?
    .context("running node coordinator/console/e2e/run.mjs")?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    eprintln!("{stderr}");
    ensure!(
        out.status.success() && stdout.contains("console e2e: passed"),
        "the browser run failed ({}): {stderr}",
        out.status
    );
    for shot in [
        "containers.png",
        "containers-narrow.png",
        "container.png",
        "hosts.png",
    ] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/console-artifacts")
            .join(shot);
        ensure!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            p.display()
        );
    }
    Ok(())
}
