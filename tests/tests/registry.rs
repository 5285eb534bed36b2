//! Images from a registry: a real registry (Debian's `docker-registry`) on loopback holds an
//! image the host has never seen (the base image plus a layer of its own); `GET
//! /compute/images` lists it next to the builtin one; a container created from it runs after
//! the agent pulled and unpacked it into containerd; images the registry does not hold are 422.

use anyhow::Result;
use berth_tests::registry::{push_image, Registry};
use berth_tests::{containerd, free_tcp_port, run, Cluster};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn containers_run_images_pulled_from_the_registry() -> Result<()> {
    let mut c = Cluster::start().await?;
    let port = free_tcp_port()?;
    let _registry = Registry::start(
        &c,
        "registry",
        &format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            c.dir.join("registry-data").display()
        ),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    c.eventually(Duration::from_secs(20), "the registry answers", || async {
        Ok(reqwest::get(format!("{base}/v2/"))
            .await
            .is_ok_and(|r| r.status() == 200))
    })
    .await?;
    push_image(&c.dir, &base, "team/app", "v1").await?;

    // Point both programs at the registry.
    c.kill_agent()?;
    c.kill_coordinator()?;
    let append = |file: &str, text: String| -> Result<()> {
        let p = c.dir.join(file);
        let mut s = std::fs::read_to_string(&p)?;
        s.push_str(&text);
        Ok(std::fs::write(p, s)?)
    };
    append(
        "coordinator.toml",
        format!("\n[images]\ndefault = \"berth.local/base:latest\"\nbuiltin = [{{ name = \"base\", image = \"berth.local/base:latest\" }}]\nregistry = \"{base}\"\n"),
    )?;
    append(
        "agent.toml",
        format!("\n[images]\nregistries = [\"{base}\"]\n"),
    )?;
    c.start_coordinator().await?;
    c.start_agent().await?;
    c.wait_agents(1).await?;

    let alice = c.user("alice")?;
    let reference = format!("127.0.0.1:{port}/team/app:v1");
    let (s, images) = alice.call("GET", "/compute/images", None).await?;
    assert_eq!(s, 200);
    assert_eq!(
        images,
        json!([
            {"name": "base", "image": "berth.local/base:latest", "source": "builtin"},
            {"name": "team/app:v1", "image": reference, "source": "registry"},
        ])
    );

    let key = alice.add_key("laptop").await?;
    for missing in [
        format!("127.0.0.1:{port}/team/app:v2"),
        "docker.io/library/nginx:latest".into(),
    ] {
        let (s, body) = alice
            .call(
                "POST",
                "/compute/containers",
                Some(json!({"name": "x", "ssh_key_ids": [key], "image": missing})),
            )
            .await?;
        assert_eq!(s, 422, "{missing}: {body}");
        assert!(body["details"]["image"].is_array(), "{body}");
    }

    let id = c
        .running_container(
            &alice,
            json!({"name": "pulled", "ssh_key_ids": [key], "image": reference}),
        )
        .await?;
    assert_eq!(
        containerd::exec(&c.namespace, &id, "cat /pulled.txt")?,
        "from the registry\n"
    );
    let images = run(Command::new("ctr").args(["-n", &c.namespace, "images", "ls", "-q"]))?;
    assert!(
        images.lines().any(|l| l == reference),
        "containerd holds the image: {images}"
    );
    assert!(c
        .read_log("berth-agent")
        .contains("image pulled and unpacked"));
    Ok(())
}
