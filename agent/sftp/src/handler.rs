//! The SFTP requests, each done with plain file system calls in this process (which is the
//! container's): open files and directories are handles in a table, paths are made absolute
//! against the home directory, and every error becomes the status OpenSSH's server would send.

use crate::extensions::{self, Extension};
use crate::{attrs, paths};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Most bytes one READ answers (OpenSSH's own limit; clients ask for 32–256 KiB).
const MAX_READ: u32 = 256 * 1024;
/// Most handles one client holds open.
const MAX_HANDLES: usize = 512;
/// Entries one READDIR answers.
const DIR_BATCH: usize = 100;

enum Open {
    File { path: PathBuf, file: std::fs::File },
    Dir { entries: Vec<File> },
}

pub struct Sftp {
    home: PathBuf,
    handles: HashMap<String, Open>,
    next: u64,
}

fn status(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Success".into(),
        language_tag: "en-US".into(),
    }
}

/// The status for a failed call, with the system's words for it.
fn failed(e: std::io::Error) -> StatusReply {
    let code = match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        ErrorKind::Unsupported => StatusCode::OpUnsupported,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn no_handle() -> StatusReply {
    StatusCode::Failure.with_message("no such handle")
}

impl Sftp {
    pub fn new() -> Sftp {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from("/root")])
            .find(|h| h.is_dir())
            .unwrap_or_else(|| PathBuf::from("/"));
        Sftp {
            home,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        paths::absolute(&self.home, p)
    }

    fn keep(&mut self, open: Open) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message("too many open handles"));
        }
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    fn file(&self, handle: &str) -> Result<(&PathBuf, &std::fs::File), StatusReply> {
        match self.handles.get(handle) {
            Some(Open::File { path, file }) => Ok((path, file)),
            _ => Err(no_handle()),
        }
    }

    fn rename_over(&self, id: u32, from: &str, to: &str) -> Result<Status, StatusReply> {
        std::fs::rename(self.path(from), self.path(to)).map_err(failed)?;
        Ok(status(id))
    }
}

impl russh_sftp::server::Handler for Sftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, StatusReply> {
        let mut v = Version::new();
        for ext in extensions::OFFERED {
            v.extensions.insert(ext.into(), "1".into());
        }
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, StatusReply> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(&filename);
        let mut opts: std::fs::OpenOptions = pflags.into();
        // A new file gets the mode the client asks (scp -p, sftp put -p), else 0666 & umask.
        opts.mode(attrs.permissions.map_or(0o666, |p| p & 0o7777));
        let file = opts.open(&path).map_err(failed)?;
        let handle = self.keep(Open::File { path, file })?;
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        self.handles.remove(&handle).ok_or_else(no_handle)?;
        Ok(status(id))
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusReply> {
        let (_, file) = self.file(&handle)?;
        let mut data = vec![0u8; len.min(MAX_READ) as usize];
        let n = loop {
            match file.read_at(&mut data, offset) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                r => break r.map_err(failed)?,
            }
        };
        if n == 0 && len > 0 {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        data.truncate(n);
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusReply> {
        let (_, file) = self.file(&handle)?;
        file.write_all_at(&data, offset).map_err(failed)?;
        Ok(status(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let m = std::fs::symlink_metadata(self.path(&path)).map_err(failed)?;
        Ok(Attrs {
            id,
            attrs: attrs::of(&m),
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let m = std::fs::metadata(self.path(&path)).map_err(failed)?;
        Ok(Attrs {
            id,
            attrs: attrs::of(&m),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let m = self.file(&handle)?.1.metadata().map_err(failed)?;
        Ok(Attrs {
            id,
            attrs: attrs::of(&m),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        a: FileAttributes,
    ) -> Result<Status, StatusReply> {
        attrs::apply(&self.path(&path), None, &a).map_err(failed)?;
        Ok(status(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        a: FileAttributes,
    ) -> Result<Status, StatusReply> {
        let (path, file) = self.file(&handle)?;
        attrs::apply(path, Some(file), &a).map_err(failed)?;
        Ok(status(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        let dir = self.path(&path);
        let mut entries = Vec::new();
        for name in [".", ".."] {
            if let Ok(m) = std::fs::symlink_metadata(dir.join(name)) {
                entries.push(attrs::entry(name.into(), &m));
            }
        }
        for e in std::fs::read_dir(&dir).map_err(failed)? {
            let e = e.map_err(failed)?;
            // An entry gone between the listing and its stat is left out, as `ls` does.
            if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                entries.push(attrs::entry(e.file_name().to_string_lossy().into(), &m));
            }
        }
        entries.reverse(); // taken from the end, batch by batch
        let handle = self.keep(Open::Dir { entries })?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        let Some(Open::Dir { entries }) = self.handles.get_mut(&handle) else {
            return Err(no_handle());
        };
        if entries.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        let take = entries.len().min(DIR_BATCH);
        let files = entries
            .split_off(entries.len() - take)
            .into_iter()
            .rev()
            .collect();
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        std::fs::remove_file(self.path(&filename)).map_err(failed)?;
        Ok(status(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(attrs.permissions.map_or(0o777, |p| p & 0o7777))
            .create(self.path(&path))
            .map_err(failed)?;
        Ok(status(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusReply> {
        std::fs::remove_dir(self.path(&path)).map_err(failed)?;
        Ok(status(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let real = paths::real(&self.home, &path);
        Ok(Name {
            id,
            files: vec![File::dummy(real.to_string_lossy())],
        })
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusReply> {
        // SFTP v3's rename never replaces (posix-rename@openssh.com does).
        if std::fs::symlink_metadata(self.path(&newpath)).is_ok() {
            return Err(StatusCode::Failure.with_message("the target exists"));
        }
        self.rename_over(id, &oldpath, &newpath)
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let target = std::fs::read_link(self.path(&path)).map_err(failed)?;
        Ok(Name {
            id,
            files: vec![File::dummy(target.to_string_lossy())],
        })
    }

    /// OpenSSH sends the target first and the link second (the reverse of the draft's
    /// order, which russh-sftp's field names follow); OpenSSH's order is what clients speak.
    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, StatusReply> {
        let (target, link) = (linkpath, targetpath);
        std::os::unix::fs::symlink(&target, self.path(&link)).map_err(failed)?;
        Ok(status(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, StatusReply> {
        match extensions::parse(&request, &data)? {
            Extension::PosixRename { from, to } => Ok(self.rename_over(id, &from, &to)?.into()),
            Extension::Hardlink { target, link } => {
                std::fs::hard_link(self.path(&target), self.path(&link)).map_err(failed)?;
                Ok(status(id).into())
            }
            Extension::Fsync { handle } => {
                self.file(&handle)?.1.sync_all().map_err(failed)?;
                Ok(status(id).into())
            }
        }
    }
}
