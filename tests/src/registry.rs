//! A real image registry for the tests: Debian's `docker-registry` started with a config of
//! the test's, and the test base image pushed to it with one more layer of its own.

use crate::{image_tar, run, Cluster};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `docker-registry` process, killed when dropped.
pub struct Registry(Child);

impl Registry {
    /// Serves `config` (YAML), logging to `<name>.log` in the cluster's directory.
    pub fn start(c: &Cluster, name: &str, config: &str) -> Result<Registry> {
        let path = c.dir.join(format!("{name}.yml"));
        std::fs::write(&path, config)?;
        let log = std::fs::File::create(c.dir.join(format!("{name}.log")))?;
        Ok(Registry(
            Command::new("docker-registry")
                .arg("serve")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("docker-registry (apt package docker-registry)")?,
        ))
    }
}

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

/// Pushes the test base image with one more layer (`/pulled.txt`) as `repo:tag` to the
/// plain-HTTP registry at `base`; returns the manifest's digest.
pub async fn push_image(dir: &Path, base: &str, repo: &str, tag: &str) -> Result<String> {
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
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let mpath = dir.join("manifest.json");
    std::fs::write(&mpath, &manifest_bytes)?;
    let manifest_digest = sha256(&mpath)?;
    let r = http
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest_bytes)
        .send()
        .await?;
    if r.status() != 201 {
        bail!("manifest: {} {}", r.status(), r.text().await?);
    }
    Ok(manifest_digest)
}
