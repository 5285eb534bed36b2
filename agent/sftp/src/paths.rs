//! Paths as a client names them, made absolute against the server's working directory (the
//! user's home) and normalised the way OpenSSH's `realpath` answers.

use std::path::{Component, Path, PathBuf};

/// `path` resolved against `cwd`: symlinks followed where the path exists, otherwise `.`
/// and `..` folded lexically (a client asks for the real path of names it is about to create).
pub fn real(cwd: &Path, path: &str) -> PathBuf {
    let joined = absolute(cwd, path);
    std::fs::canonicalize(&joined).unwrap_or_else(|_| fold(&joined))
}

/// `path` made absolute against `cwd`, not otherwise changed.
pub fn absolute(cwd: &Path, path: &str) -> PathBuf {
    match path {
        "" => cwd.to_path_buf(),
        p => cwd.join(p),
    }
}

fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{absolute, fold};
    use std::path::Path;

    #[test]
    fn names_are_made_absolute_and_folded() {
        let home = Path::new("/root");
        assert_eq!(absolute(home, ""), Path::new("/root"));
        assert_eq!(absolute(home, "a/b"), Path::new("/root/a/b"));
        assert_eq!(absolute(home, "/etc"), Path::new("/etc"));
        assert_eq!(fold(Path::new("/root/./x/../y")), Path::new("/root/y"));
        assert_eq!(fold(Path::new("/../../etc")), Path::new("/etc"));
    }
}
