//! The log driver: the agent binary started by containerd's shim (`binary://` stdio URI) for
//! each task. It reads the task's stdout (fd 3) and stderr (fd 4) line by line, stamps each
//! line with an RFC3339Nano time and appends `<time> <stream> <text>` to the container's log,
//! rotating to `<id>.log.1` at half the cap so one container never holds more than the cap.
//!
//! It is a child of the shim, not of the agent: logging goes on while the agent restarts, and a
//! container writes at the pace of the disk, never of the agent.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The query key that marks an invocation as the log driver.
pub const DRIVER_ARG: &str = "berth-log-driver";
/// Longest line kept whole; longer output is split.
const MAX_LINE: usize = 16 * 1024;

struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    /// Rotate when the current file passes this.
    half: u64,
}

impl Sink {
    fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<Sink> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Sink {
            path,
            file,
            size,
            half: (max_bytes / 2).max(4096),
        })
    }

    fn write_line(&mut self, stream: &str, text: &[u8]) -> std::io::Result<()> {
        let (secs, nanos) = berth_shared::time::now_unix();
        let ts = berth_shared::time::rfc3339_nanos(secs, nanos);
        let text = String::from_utf8_lossy(text);
        let line = format!("{ts} {stream} {}\n", text.trim_end_matches(['\n', '\r']));
        if self.size + line.len() as u64 > self.half && self.size > 0 {
            std::fs::rename(&self.path, rotated(&self.path))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = 0;
        }
        // One write per line: a reader never sees half a line from two streams.
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// The stdio URI containerd's shim starts `driver` from for each task: its query becomes the
/// driver's arguments, which [`run_if_invoked`] reads.
pub fn uri(driver: &Path, log_dir: &Path, max_bytes: u64) -> String {
    format!(
        "binary://{}?{DRIVER_ARG}={}&max-bytes={max_bytes}",
        uri_escape(&driver.display().to_string()),
        uri_escape(&log_dir.display().to_string()),
    )
}

/// Percent-escapes what a URI path or query value cannot hold as is.
fn uri_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `<id>.log` → `<id>.log.1`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

fn pump(fd: u32, stream: &'static str, sink: Arc<Mutex<Sink>>) {
    let Ok(f) = File::open(format!("/proc/self/fd/{fd}")) else {
        return;
    };
    let mut r = BufReader::with_capacity(64 * 1024, f);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        // Reads to the next newline, but never more than MAX_LINE bytes at once.
        match Read::take(&mut r, MAX_LINE as u64).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
        let _ = s.write_line(stream, &buf);
    }
}

/// Runs the driver if the arguments say so (containerd passes the URI's query as `key value`
/// pairs, in any order); returns the exit code, or `None` for a normal agent start.
pub fn run_if_invoked(args: &[String]) -> Option<i32> {
    let pos = args.iter().position(|a| a == DRIVER_ARG)?;
    let value = |key: &str| {
        args.iter()
            .position(|a| a == key)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let dir = PathBuf::from(args.get(pos + 1)?);
    let max_bytes: u64 = value("max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10 * 1024 * 1024);
    let id = std::env::var("CONTAINER_ID").unwrap_or_default();
    if !berth_shared::ids::is_container_id(&id) {
        return Some(2);
    }
    let _ = std::fs::create_dir_all(&dir);
    let sink = match Sink::open(dir.join(format!("{id}.log")), max_bytes) {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(_) => return Some(1),
    };
    let out = {
        let s = sink.clone();
        std::thread::spawn(move || pump(3, "stdout", s))
    };
    let err = std::thread::spawn(move || pump(4, "stderr", sink));
    // Ready: the shim waits for a byte (or end of file) on fd 5 before starting the task.
    if let Ok(mut ready) = OpenOptions::new().write(true).open("/proc/self/fd/5") {
        let _ = ready.write_all(b"1");
    }
    let _ = out.join();
    let _ = err.join();
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_carries_the_driver_arguments_escaped() {
        let u = uri(
            Path::new("/usr/local/bin/berth agent"),
            Path::new("/var/lib/berth/logs"),
            65536,
        );
        assert_eq!(
            u,
            "binary:///usr/local/bin/berth%20agent?berth-log-driver=/var/lib/berth/logs&max-bytes=65536"
        );
    }
}
