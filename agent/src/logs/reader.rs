//! Reading a container's log as the driver wrote it: the last lines, and new lines as they
//! come (following across rotation without gaps or repeats).

use super::driver::rotated;
use berth_shared::protocol::{LogLine, LogStream};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `<time> <stream> <text>` → a line; `None` for anything else.
pub fn parse(line: &str) -> Option<LogLine> {
    let (timestamp, rest) = line.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let stream = match stream {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        _ => return None,
    };
    Some(LogLine {
        timestamp: timestamp.to_string(),
        stream,
        text: text.to_string(),
    })
}

/// Reads a container's log: what is there now, then whatever is appended.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    /// Bytes after the last newline, waiting for the rest of their line.
    partial: Vec<u8>,
}

fn lines_of(buf: &mut Vec<u8>, partial: &mut Vec<u8>, out: &mut Vec<LogLine>) {
    partial.append(buf);
    let Some(last_nl) = partial.iter().rposition(|b| *b == b'\n') else {
        return;
    };
    let rest = partial.split_off(last_nl + 1);
    let complete = std::mem::replace(partial, rest);
    out.extend(String::from_utf8_lossy(&complete).lines().filter_map(parse));
}

impl Follower {
    /// Opens the log of `id` in `dir` and returns it with the lines already there (the rotated
    /// file's first), at most the last `tail`.
    pub fn open(dir: &Path, id: &str, tail: usize) -> (Follower, Vec<LogLine>) {
        let path = dir.join(format!("{id}.log"));
        let mut lines = Vec::new();
        let mut partial = Vec::new();
        if let Ok(mut old) = File::open(rotated(&path)) {
            let mut buf = Vec::new();
            let _ = old.read_to_end(&mut buf);
            lines_of(&mut buf, &mut partial, &mut lines);
            partial.clear();
        }
        let mut f = Follower {
            path,
            file: None,
            inode: 0,
            partial: Vec::new(),
        };
        lines.extend(f.poll());
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
        (f, lines)
    }

    /// New complete lines since the last call (empty when there are none).
    pub fn poll(&mut self) -> Vec<LogLine> {
        let mut out = Vec::new();
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        // Finish the file we hold; if the driver rotated it away, move to the new one.
        loop {
            if let Some(f) = self.file.as_mut() {
                let mut buf = Vec::new();
                let _ = f.read_to_end(&mut buf);
                lines_of(&mut buf, &mut self.partial, &mut out);
            }
            match current {
                Some(ino) if ino != self.inode || self.file.is_none() => {
                    let Ok(mut f) = File::open(&self.path) else {
                        break;
                    };
                    let _ = f.seek(SeekFrom::Start(0));
                    self.file = Some(f);
                    self.inode = ino;
                    self.partial.clear();
                }
                _ => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_across_rotation_without_gaps_or_repeats() {
        let dir = std::env::temp_dir().join(format!("berth-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("abcd1234.log");
        let w = |p: &Path, s: &str| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("open");
            f.write_all(s.as_bytes()).expect("write");
        };
        w(&path, "t1 stdout one\nt2 stderr two\nt3 stdout thr");
        let (mut f, lines) = Follower::open(&dir, "abcd1234", 1);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "two");
        assert_eq!(lines[0].stream, LogStream::Stderr);
        w(&path, "ee\n");
        let got = f.poll();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, "three");
        // Rotation: the rest of the old file, then the new one.
        w(&path, "t4 stdout four\n");
        std::fs::rename(&path, rotated(&path)).expect("rotate");
        w(&path, "t5 stdout five\n");
        let got: Vec<String> = f.poll().into_iter().map(|l| l.text).collect();
        assert_eq!(got, ["four", "five"]);
        assert!(f.poll().is_empty());
        let (_, all) = Follower::open(&dir, "abcd1234", 100);
        assert_eq!(all.len(), 5);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
