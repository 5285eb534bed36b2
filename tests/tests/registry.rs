//! Images from a registry: a real registry (Debian's `docker-registry`) on loopback holds an
//! image the host has never seen (the base image plus a layer of its own); `GET
//! /compute/images` lists it next to the builtin one; a container created from it runs after
//! the agent pulled and unpacked it into containerd; images the registry does not hold are 422.

use anyhow::{bail, Context, Result};
use berth_tests::{containerd, free_tcp_port, image_tar, run, Cluster};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256(path: &Path) -> Result<String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    Ok(format!(
        "sha256:{}",
        out.split_whitespace().next().context("sha256sum")?
    ))
}

async fn push_blob(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    data: Vec<u8>,
    digest: &str,
) -> Result<()> {
    let r = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await?;
    if r.status() != 202 {
        bail!("upload start: {}", r.status());
    }
    let loc = r.headers()["location"].to_str()?.to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = http
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await?;
    if r.status() != 201 {
        bail!("upload {digest}: {}", r.status());
    }
    Ok(())
}

/// Pushes the test base image with one more layer (`/pulled.txt`) as `repo:tag`.
async fn push_image(dir: &Path, base: &str, repo: &str, tag: &str) -> Result<()> {
    let oci = dir.join("oci");
    std::fs::create_dir_all(&oci)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(image_tar())
        .arg("-C")
        .arg(&oci))?;
    let blob = |d: &str| {
        oci.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index: Value = serde_json::from_slice(&std::fs::read(oci.join("index.json"))?)?;
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .context("index")?
        .to_string();
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(blob(&mdigest))?)?;
    let cdigest = manifest["config"]["digest"]
        .as_str()
        .context("config")?
        .to_string();
    let mut config: Value = serde_json::from_slice(&std::fs::read(blob(&cdigest))?)?;

    let files = dir.join("layer");
    std::fs::create_dir_all(&files)?;
    std::fs::write(files.join("pulled.txt"), "from the registry\n")?;
    let layer = dir.join("layer.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&files)
        .arg("-cf")
        .arg(&layer)
        .arg("pulled.txt"))?;
    let ldigest = sha256(&layer)?;
    let lsize = std::fs::metadata(&layer)?.len();
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("diff_ids")?
        .push(json!(ldigest));
    manifest["layers"]
        .as_array_mut()
        .context("layers")?
        .push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldigest, "size": lsize}));
    let config_bytes = serde_json::to_vec(&config)?;
    let cpath = dir.join("config.json");
    std::fs::write(&cpath, &config_bytes)?;
    let new_cdigest = sha256(&cpath)?;
    manifest["config"]["digest"] = json!(new_cdigest);
    manifest["config"]["size"] = json!(config_bytes.len());

    let http = reqwest::Client::new();
    for l in manifest["layers"].as_array().context("layers")?.clone() {
        let d = l["digest"].as_str().context("digest")?;
        let data = if d == ldigest {
            std::fs::read(&layer)?
        } else {
            std::fs::read(blob(d))?
        };
        push_blob(&http, base, repo, data, d).await?;
    }
    push_blob(&http, base, repo, config_bytes, &new_cdigest).await?;
    let r = http
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&manifest)?)
        .send()
        .await?;
    if r.status() != 201 {
        bail!("manifest: {} {}", r.status(), r.text().await?);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_run_images_pulled_from_the_registry() -> Result<()> {
    let mut c = Cluster::start().await?;
    let port = free_tcp_port()?;
    let reg_dir = c.dir.join("registry");
    std::fs::create_dir_all(&reg_dir)?;
    std::fs::write(
        reg_dir.join("config.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            reg_dir.join("data").display()
        ),
    )?;
    let log = std::fs::File::create(c.dir.join("registry.log"))?;
    let _registry = Registry(
        Command::new("docker-registry")
            .arg("serve")
            .arg(reg_dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("docker-registry (apt package docker-registry)")?,
    );
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
