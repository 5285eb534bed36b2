//! Persistent volumes: one host directory per mount path of a container, under
//! `<data_dir>/volumes/<id>/`, which is the container's own ext4 filesystem ([`disk`]) of
//! `storage_gb`. Host paths are built from the container id (validated) and an escaped form of
//! the mount path, never from anything that could name another place.
//!
//! Users' volumes (resources of their own, outliving containers) are filesystems of the same
//! kind under `<data_dir>/user-volumes/<volume id>`, their data in its `data/` directory;
//! only an explicit delete removes one.

pub mod disk;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("container id {0:?} is not a Berth id")]
    BadId(String),
    #[error("{0:?} is not a volume id")]
    BadVolumeId(String),
    #[error("volume {volume} is mounted by container {container} on this host")]
    InUse { volume: String, container: String },
    #[error("volume image {0} is still mounted by a container; it grows when that container is next made")]
    Busy(String),
    #[error("volume: {what} failed: {detail}")]
    Command { what: &'static str, detail: String },
}

#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
    /// Users' volumes.
    users: PathBuf,
}

/// `/var/data` → `var%2Fdata`: one flat, reversible directory name per mount path.
fn escape(mount: &str) -> String {
    mount
        .trim_start_matches('/')
        .replace('%', "%25")
        .replace('/', "%2F")
}

impl Volumes {
    pub fn new(data_dir: &Path) -> Volumes {
        Volumes {
            root: data_dir.join("volumes"),
            users: data_dir.join("user-volumes"),
        }
    }

    /// `(image, mount point)` of user volume `vid`.
    fn user_paths(&self, vid: &str) -> Result<(PathBuf, PathBuf), VolumeError> {
        if !berth_shared::volumes::is_volume_id(vid) {
            return Err(VolumeError::BadVolumeId(vid.to_string()));
        }
        Ok((self.users.join(format!("{vid}.ext4")), self.users.join(vid)))
    }

    /// Makes user volume `vid` (or grows it to `size_gb`, which needs no container to hold
    /// it) and mounts it on the host; returns the directory containers mount.
    pub fn ensure_user(&self, vid: &str, size_gb: u64) -> Result<PathBuf, VolumeError> {
        let (img, dir) = self.user_paths(vid)?;
        disk::ensure(&img, &dir, size_gb)?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|source| VolumeError::Io {
            path: data.display().to_string(),
            source,
        })?;
        Ok(data)
    }

    /// Bytes in use on user volume `vid`, while it is mounted here.
    pub fn user_used_bytes(&self, vid: &str) -> Option<u64> {
        disk::used_bytes(&self.user_paths(vid).ok()?.1)
    }

    /// Removes user volume `vid` and its data. Missing is fine.
    pub fn remove_user(&self, vid: &str) -> Result<(), VolumeError> {
        let (img, dir) = self.user_paths(vid)?;
        disk::remove(&img, &dir)?;
        match std::fs::remove_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(VolumeError::Io {
                path: dir.display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn container_dir(&self, id: &str) -> Result<PathBuf, VolumeError> {
        if !berth_shared::ids::is_container_id(id) {
            return Err(VolumeError::BadId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    pub fn host_path(&self, id: &str, mount: &str) -> Result<PathBuf, VolumeError> {
        Ok(self.container_dir(id)?.join(escape(mount)))
    }

    fn image(&self, id: &str) -> Result<PathBuf, VolumeError> {
        self.container_dir(id)?; // validates the id
        Ok(self.root.join(format!("{id}.ext4")))
    }

    /// Mounts the container's filesystem of `size_gb` (creating or growing it) and creates
    /// the directory of every mount in it; returns `(host, target)` pairs. Call only while the
    /// container is not running.
    pub fn ensure(
        &self,
        id: &str,
        mounts: &[String],
        size_gb: u64,
    ) -> Result<Vec<(PathBuf, String)>, VolumeError> {
        disk::ensure(&self.image(id)?, &self.container_dir(id)?, size_gb)?;
        mounts
            .iter()
            .map(|m| {
                let p = self.host_path(id, m)?;
                std::fs::create_dir_all(&p).map_err(|source| VolumeError::Io {
                    path: p.display().to_string(),
                    source,
                })?;
                Ok((p, m.clone()))
            })
            .collect()
    }

    /// Whether any volume of the container is on disk.
    pub fn exists(&self, id: &str) -> bool {
        self.container_dir(id).is_ok_and(|d| d.is_dir())
    }

    /// Bytes the container's data takes on its filesystem.
    pub fn used_bytes(&self, id: &str) -> Option<u64> {
        disk::used_bytes(&self.container_dir(id).ok()?)
    }

    /// Removes every volume of the container. Missing is fine.
    pub fn remove(&self, id: &str) -> Result<(), VolumeError> {
        let dir = self.container_dir(id)?;
        disk::remove(&self.image(id)?, &dir)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(VolumeError::Io {
                path: dir.display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_stay_inside_the_container_dir() {
        let v = Volumes::new(Path::new("/data"));
        assert_eq!(
            v.host_path("abc12345", "/var/data").expect("path"),
            Path::new("/data/volumes/abc12345/var%2Fdata")
        );
        assert_ne!(
            v.host_path("abc12345", "/var_data").expect("a"),
            v.host_path("abc12345", "/var/data").expect("b")
        );
        assert!(v.host_path("../../etc", "/root").is_err());
    }
}
