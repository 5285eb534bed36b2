//! Pulling an image from a registry ([`berth_registry`]) into containerd. containerd 1.6 has
//! no transfer service, so the agent does client-side what `ctr images pull` does: manifest
//! (the linux/<arch> one of an index), config and layers into the content store, the layers
//! unpacked into the snapshotter through the diff service, then the image records — under
//! the reference pulled and under `repo@<digest>`, the name a container made from it keeps.
//! Every manifest and blob is checked against its digest before it is committed.

use super::image::chain_id;
use super::{grpc, Runtime, RuntimeError};
use berth_registry::distribution::Desc;
use berth_registry::{Blob, Fetched, Registry, RegistryError};
use berth_shared::images::Reference;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, Image, InfoRequest, UpdateImageRequest, WriteAction,
    WriteContentRequest,
};
use containerd_client::types::Descriptor;
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Runtime {
    fn pull_error(&self, image: &str, reason: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Image {
            image: image.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Pulls `reference` for linux/`arch` from `registry` and unpacks it; returns the digest
    /// the reference resolved to (an index's, when it named one). The image is kept as
    /// `reference` and as `repo@<that digest>`.
    pub async fn pull(
        &self,
        registry: &Registry,
        reference: &str,
        arch: &str,
    ) -> Result<String, RuntimeError> {
        let bad = |r: String| self.pull_error(reference, r);
        let registry_error = |source| RuntimeError::Registry {
            image: reference.to_string(),
            source,
        };
        let parsed =
            Reference::parse(reference).ok_or_else(|| bad("is not a registry reference".into()))?;
        let repo = parsed.repository;
        let Fetched {
            media_type,
            body,
            digest: manifest_digest,
            manifest,
            config,
            resolved,
        } = registry
            .manifest(repo, parsed.manifest_ref(), arch)
            .await
            .map_err(registry_error)?;
        let cfg_bytes = registry
            .blob_bytes(repo, &config.digest)
            .await
            .map_err(registry_error)?;
        let cfg: Config =
            serde_json::from_slice(&cfg_bytes).map_err(|e| bad(format!("config: {e}")))?;
        if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(bad("layers and diff_ids do not match".into()));
        }
        let top = chain_id(&cfg.rootfs.diff_ids).ok_or_else(|| bad("no layers".into()))?;

        // Content: layers, config (keeping the unpacked snapshots), manifest (keeping the rest).
        for l in &manifest.layers {
            if !self.has_content(&l.digest).await? {
                let blob = registry
                    .blob(repo, &l.digest)
                    .await
                    .map_err(registry_error)?;
                self.write_content(
                    &l.digest,
                    l.size,
                    HashMap::new(),
                    Source::Registry(Box::new(blob)),
                )
                .await
                .map_err(|e| match e {
                    WriteError::Runtime(e) => e,
                    WriteError::Download(source) => registry_error(source),
                })?;
            }
        }
        let mut labels = HashMap::new();
        labels.insert(
            format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter),
            top.clone(),
        );
        let cfg_len = cfg_bytes.len() as i64;
        self.write_bytes(&config.digest, cfg_len, labels, cfg_bytes)
            .await?;
        let mut labels = HashMap::new();
        labels.insert(
            "containerd.io/gc.ref.content.config".into(),
            config.digest.clone(),
        );
        for (i, l) in manifest.layers.iter().enumerate() {
            labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                l.digest.clone(),
            );
        }
        let manifest_len = body.len() as i64;
        self.write_bytes(&manifest_digest, manifest_len, labels, body)
            .await?;

        // Unpack: one committed snapshot per chain id.
        for (i, l) in manifest.layers.iter().enumerate() {
            let chain = chain_id(&cfg.rootfs.diff_ids[..=i]).unwrap_or_default();
            let parent = if i == 0 {
                String::new()
            } else {
                chain_id(&cfg.rootfs.diff_ids[..i]).unwrap_or_default()
            };
            self.unpack_layer(reference, l, &cfg.rootfs.diff_ids[i], &chain, &parent)
                .await?;
        }

        let target = Descriptor {
            media_type: if media_type.is_empty() {
                "application/vnd.oci.image.manifest.v1+json".into()
            } else {
                media_type
            },
            digest: manifest_digest,
            size: manifest_len,
            annotations: HashMap::new(),
        };
        let pinned = parsed.pinned(&resolved);
        self.put_image(&pinned, &target).await?;
        if pinned != reference {
            self.put_image(reference, &target).await?;
        }
        tracing::info!(image = %reference, digest = %resolved, chain = %top, "image pulled and unpacked");
        Ok(resolved)
    }

    /// The image record `name` → `target`, made or moved there.
    async fn put_image(&self, name: &str, target: &Descriptor) -> Result<(), RuntimeError> {
        let image = Image {
            name: name.to_string(),
            target: Some(target.clone()),
            ..Default::default()
        };
        let created = self
            .client
            .images()
            .create(self.req(CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await
            .map_err(grpc("create image"));
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => self
                .client
                .images()
                .update(self.req(UpdateImageRequest {
                    image: Some(image),
                    update_mask: None,
                    source_date_epoch: None,
                }))
                .await
                .map(|_| ())
                .map_err(grpc("update image")),
            Err(e) => Err(e),
        }
    }

    pub async fn has_image(&self, name: &str) -> Result<bool, RuntimeError> {
        Ok(self.get_image(name).await?.is_some())
    }

    async fn has_content(&self, digest: &str) -> Result<bool, RuntimeError> {
        match self
            .client
            .content()
            .info(self.req(InfoRequest {
                digest: digest.into(),
            }))
            .await
            .map_err(grpc("content info"))
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn write_bytes(
        &self,
        digest: &str,
        size: i64,
        labels: HashMap<String, String>,
        data: Vec<u8>,
    ) -> Result<(), RuntimeError> {
        self.write_content(digest, size, labels, Source::Bytes(data))
            .await
            .map_err(|e| match e {
                WriteError::Runtime(e) => e,
                WriteError::Download(e) => self.pull_error(digest, e),
            })
    }

    /// Streams one blob into the content store; a download that breaks off or does not
    /// hash to `digest` is never committed (and containerd checks size and digest again).
    async fn write_content(
        &self,
        digest: &str,
        size: i64,
        labels: HashMap<String, String>,
        source: Source,
    ) -> Result<(), WriteError> {
        let failed = Arc::new(Mutex::new(None));
        let (stream, producer) = write_requests(digest, size, labels, source, failed.clone());
        let _stop = AbortOnDrop(producer);
        let written = async {
            let result = self.client.content().write(self.req(stream)).await;
            let mut responses = match result.map_err(grpc("write content")) {
                Ok(r) => r.into_inner(),
                Err(e) if e.is_already_exists() => return Ok(()),
                Err(e) => return Err(e),
            };
            while let Some(r) = responses.next().await {
                match r.map_err(grpc("write content")) {
                    Ok(_) => {}
                    Err(e) if e.is_already_exists() => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        .await;
        // The download's own failure says more than what containerd made of a short stream.
        if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(WriteError::Download(e));
        }
        written.map_err(WriteError::Runtime)
    }

    async fn unpack_layer(
        &self,
        image: &str,
        layer: &Desc,
        diff_id: &str,
        chain: &str,
        parent: &str,
    ) -> Result<(), RuntimeError> {
        let exists = self
            .client
            .snapshots()
            .stat(self.req(StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: chain.into(),
            }))
            .await
            .is_ok();
        if exists {
            return Ok(());
        }
        let key = format!("{} {chain}", crate::runtime::exec::new_exec_id("extract"));
        let mounts = self
            .client
            .snapshots()
            .prepare(self.req(PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.clone(),
                parent: parent.into(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(grpc("prepare snapshot"))?
            .into_inner()
            .mounts;
        let applied = self
            .client
            .diff()
            .apply(self.req(ApplyRequest {
                diff: Some(Descriptor {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(grpc("apply layer"));
        let result = match applied {
            Ok(r) if r.get_ref().applied.as_ref().map(|d| d.digest.as_str()) == Some(diff_id) => {
                self.client
                    .snapshots()
                    .commit(self.req(CommitSnapshotRequest {
                        snapshotter: self.snapshotter.clone(),
                        name: chain.into(),
                        key: key.clone(),
                        labels: HashMap::new(),
                    }))
                    .await
                    .map(|_| ())
                    .map_err(grpc("commit snapshot"))
            }
            Ok(_) => Err(self.pull_error(
                image,
                format!("layer {} does not match its diff id", layer.digest),
            )),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = self
                .client
                .snapshots()
                .remove(self.req(RemoveSnapshotRequest {
                    snapshotter: self.snapshotter.clone(),
                    key,
                }))
                .await;
        }
        match result {
            Err(e) if e.is_already_exists() => Ok(()),
            other => other,
        }
    }
}

/// The messages of one content write, made by a task of their own: head, the data at
/// increasing offsets, the commit — only when the download ended whole and matched its digest
/// (else `failed` says why and the stream ends uncommitted). (A channel, not a stream
/// combinator: tonic's client-streaming future is only `Send` for a plain stream type.)
fn write_requests(
    digest: &str,
    size: i64,
    labels: HashMap<String, String>,
    source: Source,
    failed: Arc<Mutex<Option<RegistryError>>>,
) -> (Requests, tokio::task::JoinHandle<()>) {
    let reference = format!("berth-pull-{digest}");
    let msg = |action: WriteAction| WriteContentRequest {
        action: action as i32,
        r#ref: reference.clone(),
        total: size,
        expected: digest.into(),
        ..Default::default()
    };
    let head = msg(WriteAction::Write);
    let commit = WriteContentRequest {
        labels,
        ..msg(WriteAction::Commit)
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let producer = tokio::spawn(async move {
        let data = |offset: i64, data: Vec<u8>| WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.clone(),
            offset,
            data,
            ..Default::default()
        };
        let _ = tx.send(head).await;
        let mut offset = 0i64;
        match source {
            Source::Bytes(b) => {
                offset = b.len() as i64;
                let _ = tx.send(data(0, b)).await;
            }
            Source::Registry(mut blob) => loop {
                match blob.chunk().await {
                    Ok(Some(chunk)) => {
                        let len = chunk.len() as i64;
                        if tx.send(data(offset, chunk.to_vec())).await.is_err() {
                            return;
                        }
                        offset += len;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, offset, "blob download failed; not committed");
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return;
                    }
                }
            },
        }
        // The commit carries the end offset: an offset of 0 would truncate what was written.
        let _ = tx.send(WriteContentRequest { offset, ..commit }).await;
    });
    (Requests(rx), producer)
}

struct Requests(tokio::sync::mpsc::Receiver<WriteContentRequest>);

impl futures_util::Stream for Requests {
    type Item = WriteContentRequest;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Where a blob's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    Registry(Box<Blob>),
}

/// A content write that failed in containerd, or in the download feeding it.
enum WriteError {
    Runtime(RuntimeError),
    Download(RegistryError),
}
