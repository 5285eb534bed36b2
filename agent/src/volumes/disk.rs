//! The bound on a container's persistent data: one ext4 filesystem image per container
//! (`<data>/volumes/<id>.ext4`, sparse, `storage_gb` large) loop-mounted at the container's
//! volume directory. Writing past it fails with ENOSPC inside the container and touches
//! nothing else on the host. Grown (never shrunk) with the data kept.

use super::VolumeError;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

const GIB: u64 = 1024 * 1024 * 1024;

fn run(what: &'static str, cmd: &mut Command) -> Result<(), VolumeError> {
    let out = cmd.output().map_err(|e| VolumeError::Command {
        what,
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(VolumeError::Command {
            what,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Whether `dir` is a mount point (its device differs from its parent's).
pub fn is_mounted(dir: &Path) -> bool {
    let (Ok(d), Some(Ok(p))) = (std::fs::metadata(dir), dir.parent().map(std::fs::metadata)) else {
        return false;
    };
    d.dev() != p.dev()
}

/// Creates the image (first time), grows it to `size_gb` (if it is not mounted), and mounts it
/// at `dir`.
pub fn ensure(img: &Path, dir: &Path, size_gb: u64) -> Result<(), VolumeError> {
    let size = size_gb.max(1) * GIB;
    if !img.exists() {
        if dir.is_dir() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
            // Data from before volumes were bounded: keep it where it is, unbounded.
            tracing::warn!(dir = %dir.display(), "volume predates bounded volumes; left unbounded");
            return Ok(());
        }
        if let Some(parent) = img.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp = img.with_extension("ext4.tmp");
        let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.set_len(size).map_err(io(&tmp))?;
        drop(f);
        run(
            "mkfs.ext4",
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0", "-E", "root_owner=0:0"])
                .arg(&tmp),
        )?;
        std::fs::rename(&tmp, img).map_err(io(img))?;
    }
    let have = std::fs::metadata(img).map_err(io(img))?.len();
    if have < size {
        // Grown offline: callers ensure only while the container is not running.
        if is_mounted(dir) {
            run("umount", Command::new("umount").arg(dir))?;
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(img)
            .map_err(io(img))?;
        f.set_len(size).map_err(io(img))?;
        drop(f);
        run("e2fsck", Command::new("e2fsck").args(["-f", "-p"]).arg(img))?;
        run("resize2fs", Command::new("resize2fs").arg(img))?;
        tracing::info!(img = %img.display(), size_gb, "volume grown");
    } else if have > size {
        tracing::warn!(img = %img.display(), size_gb, "shrinking a volume is not supported; keeping its size");
    }
    if !is_mounted(dir) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        run(
            "mount",
            Command::new("mount")
                .args(["-o", "loop,nosuid,nodev"])
                .arg(img)
                .arg(dir),
        )?;
    }
    Ok(())
}

/// Unmounts the volume (lazily if something still holds it) and deletes its image.
pub fn remove(img: &Path, dir: &Path) -> Result<(), VolumeError> {
    if is_mounted(dir) && run("umount", Command::new("umount").arg(dir)).is_err() {
        run("umount -l", Command::new("umount").arg("-l").arg(dir))?;
    }
    match std::fs::remove_file(img) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(img)(e)),
        _ => Ok(()),
    }
}

/// Bytes in use on the mounted volume.
pub fn used_bytes(dir: &Path) -> Option<u64> {
    if !is_mounted(dir) {
        return None;
    }
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    let used = s.blocks().saturating_sub(s.blocks_free());
    Some(used * s.fragment_size())
}
