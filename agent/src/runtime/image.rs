//! Images already present in containerd: manifest → config → the chain id of the unpacked
//! rootfs and the image's process defaults.

use super::{grpc, Runtime, RuntimeError};
use berth_registry::sha256;
use containerd_client::services::v1::{GetImageRequest, Image, ReadContentRequest};
use futures_util::StreamExt;
use serde::Deserialize;

/// What the agent needs from an image to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// Chain id of the top layer: the parent of the container's snapshot.
    pub chain_id: String,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ProcessConfig>,
    rootfs: RootFs,
}

#[derive(Deserialize, Default)]
struct ProcessConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// `chain[0] = diff[0]`, `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_id(diff_ids: &[String]) -> Option<String> {
    let mut it = diff_ids.iter();
    let mut chain = it.next()?.clone();
    for d in it {
        chain = sha256(format!("{chain} {d}").as_bytes());
    }
    Some(chain)
}

impl Runtime {
    async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, RuntimeError> {
        let mut stream = self
            .client
            .content()
            .read(self.req(ReadContentRequest {
                digest: digest.into(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(grpc("read content"))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(grpc("read content"))?.data);
            if out.len() > 64 * 1024 * 1024 {
                return Err(RuntimeError::Call {
                    op: "read content",
                    code: containerd_client::tonic::Code::ResourceExhausted,
                    message: format!("blob {digest} is larger than a manifest or config can be"),
                });
            }
        }
        Ok(out)
    }

    /// containerd's record of image `name`, if it has one.
    pub async fn get_image(&self, name: &str) -> Result<Option<Image>, RuntimeError> {
        match self
            .client
            .images()
            .get(self.req(GetImageRequest { name: name.into() }))
            .await
            .map_err(grpc("get image"))
        {
            Ok(r) => Ok(r.into_inner().image),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves `name` (as stored in containerd) for `arch` on linux.
    pub async fn image(&self, name: &str, arch: &str) -> Result<ImageInfo, RuntimeError> {
        let bad = |reason: String| RuntimeError::Image {
            image: name.to_string(),
            reason,
        };
        let Some(image) = self.get_image(name).await? else {
            return Err(bad("is not present on this host".into()));
        };
        let target = image.target.ok_or_else(|| bad("has no target".into()))?;
        let mut digest = target.digest;
        for _ in 0..3 {
            let blob = self.read_blob(&digest).await?;
            let m: Manifest =
                serde_json::from_slice(&blob).map_err(|e| bad(format!("manifest: {e}")))?;
            if let Some(config) = m.config {
                let blob = self.read_blob(&config.digest).await?;
                let c: ImageConfig =
                    serde_json::from_slice(&blob).map_err(|e| bad(format!("config: {e}")))?;
                let p = c.config.unwrap_or_default();
                return Ok(ImageInfo {
                    chain_id: chain_id(&c.rootfs.diff_ids)
                        .ok_or_else(|| bad("has no layers".into()))?,
                    env: p.env.unwrap_or_default(),
                    entrypoint: p.entrypoint.unwrap_or_default(),
                    cmd: p.cmd.unwrap_or_default(),
                    working_dir: p.working_dir.unwrap_or_default(),
                });
            }
            let pick = m.manifests.iter().find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            });
            let Some(next) = pick else {
                return Err(bad(format!(
                    "has no linux/{arch} manifest ({})",
                    m.media_type
                )));
            };
            tracing::debug!(media_type = %next.media_type, "following index entry");
            digest = next.digest.clone();
        }
        Err(bad("index nesting is too deep".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = "sha256:aaaa".to_string();
        let b = "sha256:bbbb".to_string();
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        let expect =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"sha256:aaaa sha256:bbbb");
        let hex = berth_shared::ids::hex(expect.as_ref());
        assert_eq!(chain_id(&[a, b]), Some(format!("sha256:{hex}")));
        assert_eq!(chain_id(&[]), None);
    }
}
