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
    // Set before the image grows, cleared once its filesystem has: a kill between the two
    // finds it and grows the filesystem still.
    let growing = img.with_extension("ext4.growing");
    if have < size || growing.exists() {
        if let Err(e) = grow(img, dir, &growing, size.max(have)) {
            mount(img, dir)?; // as it was: whatever failed, the volume stays usable
            return Err(e);
        }
        tracing::info!(img = %img.display(), size_gb, "volume grown");
    } else if have > size {
        tracing::warn!(img = %img.display(), size_gb, "shrinking a volume is not supported; keeping its size");
    }
    mount(img, dir)
}

fn mount(img: &Path, dir: &Path) -> Result<(), VolumeError> {
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

/// Grows image and filesystem to `size` bytes, offline: refused while anything but this
/// host's own mount holds the image (a container's mount of it outlives ours).
fn grow(img: &Path, dir: &Path, growing: &Path, size: u64) -> Result<(), VolumeError> {
    if is_mounted(dir) {
        run("umount", Command::new("umount").arg(dir))?;
    }
    if !loop_free(img)? {
        return Err(VolumeError::Busy(img.display().to_string()));
    }
    std::fs::File::create(growing).map_err(io(growing))?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .map_err(io(img))?;
    if f.metadata().map_err(io(img))?.len() < size {
        f.set_len(size).map_err(io(img))?;
    }
    drop(f);
    run("e2fsck", Command::new("e2fsck").args(["-f", "-p"]).arg(img))?;
    run("resize2fs", Command::new("resize2fs").arg(img))?;
    std::fs::remove_file(growing).map_err(io(growing))
}

/// Whether no loop device is backed by `img` (one goes with its last unmount, which the
/// kernel may finish a moment after `umount` returns).
fn loop_free(img: &Path) -> Result<bool, VolumeError> {
    for _ in 0..20 {
        let out = Command::new("losetup")
            .arg("-j")
            .arg(img)
            .output()
            .map_err(|e| VolumeError::Command {
                what: "losetup -j",
                detail: e.to_string(),
            })?;
        if out.status.success() && out.stdout.is_empty() {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_bytes(dir: &Path) -> u64 {
        let s = nix::sys::statvfs::statvfs(dir).expect("statvfs");
        s.blocks() * s.fragment_size()
    }

    /// Real loop mounts (root, as the agent runs): a grow a kill cut short is finished by the
    /// next ensure, and a grow while a container's mount still holds the image is refused
    /// with the volume left mounted and its data kept.
    #[test]
    fn a_cut_short_grow_is_finished_and_a_held_image_is_not_grown() {
        if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
            panic!("this test mounts loop devices: run it as root (scripts/test does)");
        }
        let base = std::env::temp_dir().join(format!("berth-disk-{}", std::process::id()));
        let (img, dir, held) = (base.join("v.ext4"), base.join("v"), base.join("held"));
        std::fs::create_dir_all(&held).unwrap();
        ensure(&img, &dir, 1).unwrap();
        std::fs::write(dir.join("marker"), b"kept").unwrap();
        let one = fs_bytes(&dir);

        // Killed after the image grew, before its filesystem did.
        run("umount", Command::new("umount").arg(&dir)).unwrap();
        std::fs::File::create(img.with_extension("ext4.growing")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(2 * GIB)
            .unwrap();
        ensure(&img, &dir, 2).unwrap();
        let two = fs_bytes(&dir);
        assert!(two > one + GIB / 2, "filesystem grown: {one} -> {two}");
        assert!(!img.with_extension("ext4.growing").exists());
        assert_eq!(std::fs::read(dir.join("marker")).unwrap(), b"kept");

        // A container's bind mount of it outlives ours: no offline grow under it.
        run(
            "mount --bind",
            Command::new("mount").arg("--bind").arg(&dir).arg(&held),
        )
        .unwrap();
        let refused = ensure(&img, &dir, 3);
        assert!(matches!(refused, Err(VolumeError::Busy(_))), "{refused:?}");
        assert!(is_mounted(&dir), "mounted again after the refusal");
        assert_eq!(fs_bytes(&dir), two, "not grown under the container");
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 2 * GIB);
        run("umount", Command::new("umount").arg(&held)).unwrap();
        ensure(&img, &dir, 3).unwrap();
        assert!(fs_bytes(&dir) > two + GIB / 2);
        assert_eq!(std::fs::read(dir.join("marker")).unwrap(), b"kept");

        remove(&img, &dir).unwrap();
        assert!(!img.exists() && !is_mounted(&dir));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
