//! File attributes both ways: a file's metadata as SFTP attributes (the whole `st_mode`, so
//! the client tells files, directories and symlinks apart) with an `ls -l` long name, and a
//! client's SETSTAT applied — size, mode, owner, times — as OpenSSH's sftp-server does.

use russh_sftp::protocol::{File, FileAttributes};
use std::fs::{FileTimes, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Seconds since the epoch as the protocol carries them (32 bits).
fn secs(s: i64) -> u32 {
    u32::try_from(s.max(0)).unwrap_or(u32::MAX)
}

pub fn of(m: &Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(m.size()),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        permissions: Some(m.mode()),
        atime: Some(secs(m.atime())),
        mtime: Some(secs(m.mtime())),
        ..Default::default()
    }
}

/// A directory entry: its name, attributes and the `ls -l` line clients print.
pub fn entry(name: String, m: &Metadata) -> File {
    let longname = long_name(&name, m);
    File {
        filename: name,
        longname,
        attrs: of(m),
    }
}

fn long_name(name: &str, m: &Metadata) -> String {
    let mode = m.mode();
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut perms = String::with_capacity(9);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let days = m.mtime().max(0) / 86_400;
    let (y, mo, d) = civil(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::try_from(mo - 1).unwrap_or(0).min(11)];
    format!(
        "{kind}{perms} {:>3} {:<8} {:<8} {:>8} {month} {d:>2} {y} {name}",
        m.nlink(),
        m.uid(),
        m.gid(),
        m.size()
    )
}

/// Days since the epoch as (year, month, day) — Howard Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Applies a SETSTAT to `path` (or to the open `file`, for FSETSTAT): the size first, then
/// owner, mode and times, each only when the client sent it.
pub fn apply(path: &Path, file: Option<&std::fs::File>, a: &FileAttributes) -> std::io::Result<()> {
    if let Some(size) = a.size {
        match file {
            Some(f) => f.set_len(size)?,
            None => std::fs::OpenOptions::new()
                .write(true)
                .open(path)?
                .set_len(size)?,
        }
    }
    if a.uid.is_some() || a.gid.is_some() {
        std::os::unix::fs::chown(path, a.uid, a.gid)?;
    }
    if let Some(mode) = a.permissions {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let (Some(at), Some(mt)) = (a.atime, a.mtime) {
        let t = |s: u32| UNIX_EPOCH + Duration::from_secs(u64::from(s));
        let times = FileTimes::new().set_accessed(t(at)).set_modified(t(mt));
        match file {
            Some(f) => f.set_times(times)?,
            None => std::fs::File::open(path)?.set_times(times)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_become_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_790), (2026, 12, 3));
    }
}
