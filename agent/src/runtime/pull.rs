//! Pulling an image from a registry ([`super::registry`]) into containerd. containerd 1.6 has
//! no transfer service, so the agent does client-side what `ctr images pull` does: manifest
//! (the linux/<arch> one of an index), config and layers into the content store (containerd
//! checks every digest on commit), the layers unpacked into the snapshotter through the diff
//! service, then the image record. Only registries named in `[images] registries` are used.

use super::image::{chain_id, sha256};
use super::registry::{Blob, Desc, Fetched, Repository};
use super::{grpc, Runtime, RuntimeError};
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, Image, InfoRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor;
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;

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

    /// Pulls `reference` for linux/`arch` from one of `registries` (base URLs) and unpacks it.
    pub async fn pull(
        &self,
        registries: &[String],
        reference: &str,
        arch: &str,
    ) -> Result<(), RuntimeError> {
        let bad = |r: String| self.pull_error(reference, r);
        let registry = |source| RuntimeError::Registry {
            image: reference.to_string(),
            source,
        };
        let (repo, tag) = Repository::of(registries, reference).map_err(registry)?;
        let Fetched {
            media_type,
            body,
            manifest,
            config,
        } = repo.manifest(tag, arch).await.map_err(registry)?;
        let cfg_bytes = repo.blob_bytes(&config.digest).await.map_err(registry)?;
        if sha256(&cfg_bytes) != config.digest {
            return Err(bad("config digest mismatch".into()));
        }
        let cfg: Config =
            serde_json::from_slice(&cfg_bytes).map_err(|e| bad(format!("config: {e}")))?;
        if cfg.rootfs.diff_ids.len() != manifest.layers.len() || manifest.layers.is_empty() {
            return Err(bad("layers and diff_ids do not match".into()));
        }
        let top = chain_id(&cfg.rootfs.diff_ids).ok_or_else(|| bad("no layers".into()))?;

        // Content: layers, config (keeping the unpacked snapshots), manifest (keeping the rest).
        for l in &manifest.layers {
            if !self.has_content(&l.digest).await? {
                let blob = repo.blob(&l.digest).await.map_err(registry)?;
                self.write_content(&l.digest, l.size, HashMap::new(), Source::Registry(blob))
                    .await?;
            }
        }
        let mut labels = HashMap::new();
        labels.insert(
            format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter),
            top.clone(),
        );
        self.write_content(
            &config.digest,
            cfg_bytes.len() as i64,
            labels,
            Source::Bytes(cfg_bytes.to_vec()),
        )
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
        let manifest_digest = sha256(&body);
        let manifest_len = body.len() as i64;
        self.write_content(&manifest_digest, manifest_len, labels, Source::Bytes(body))
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

        let image = Image {
            name: reference.to_string(),
            target: Some(Descriptor {
                media_type: if media_type.is_empty() {
                    "application/vnd.oci.image.manifest.v1+json".into()
                } else {
                    media_type
                },
                digest: manifest_digest,
                size: manifest_len,
                annotations: HashMap::new(),
            }),
            ..Default::default()
        };
        match self
            .client
            .images()
            .create(self.req(CreateImageRequest {
                image: Some(image),
                source_date_epoch: None,
            }))
            .await
            .map_err(grpc("create image"))
        {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e),
        }
        tracing::info!(image = %reference, chain = %top, "image pulled and unpacked");
        Ok(())
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

    /// Streams one blob into the content store; containerd verifies size and digest.
    async fn write_content(
        &self,
        digest: &str,
        size: i64,
        labels: HashMap<String, String>,
        source: Source,
    ) -> Result<(), RuntimeError> {
        let (stream, producer) = write_requests(digest, size, labels, source);
        let _stop = AbortOnDrop(producer);
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
/// increasing offsets, the commit. (A channel, not a stream combinator: tonic's client-streaming
/// future is only `Send` for a plain stream type.)
fn write_requests(
    digest: &str,
    size: i64,
    labels: HashMap<String, String>,
    source: Source,
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
            Source::Registry(mut blob) => {
                // A failed download ends short; containerd then refuses the commit (size).
                loop {
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
                            tracing::warn!(error = %e, offset, "blob download broke off");
                            break;
                        }
                    }
                }
                tracing::debug!(bytes = offset, "blob downloaded");
            }
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
    Registry(Blob),
}
