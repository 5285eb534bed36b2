//! Named network namespaces: a file bind-mounted from a thread that unshared its network
//! namespace, so the namespace outlives the agent (and the thread) until it is unmounted.

use super::NetworkError;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::path::Path;

fn err(path: &Path, message: impl ToString) -> NetworkError {
    NetworkError::Netns {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Whether `path` is a mounted namespace (an nsfs file, not the empty placeholder).
pub fn exists(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(f), Some(Ok(d))) => f.dev() != d.dev(),
        _ => false,
    }
}

pub fn create(path: &Path) -> Result<(), NetworkError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
    }
    std::fs::File::create(path).map_err(|e| err(path, e))?;
    let target = path.to_path_buf();
    // unshare() changes only this thread's namespace; the thread ends right after.
    std::thread::spawn(move || -> Result<(), String> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare: {e}"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind mount: {e}"))
    })
    .join()
    .map_err(|_| err(path, "namespace thread panicked"))?
    .map_err(|m| err(path, m))
}

pub fn remove(path: &Path) -> Result<(), NetworkError> {
    if exists(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| err(path, e))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(path, e)),
        _ => Ok(()),
    }
}
