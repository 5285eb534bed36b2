//! `kill -9` in the middle of a store's writes, for the embedded stores' crash tests (feature
//! `testing`). The writer is a child process: the test binary itself running one ignored
//! test, which writes as fast as it can and prints `ack <id>` once a write is flushed. The
//! parent kills it at a random moment, then the test reopens the store and checks every
//! acknowledged id — and does it again, on the same files, as many times as asked.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The writer's side: the store directory the parent named in `var`, if this process is a
/// writer (the ignored test does nothing when run by hand without it).
pub fn writer_dir(var: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(var).map(Into::into)
}

/// The writer's side: `id` is durable.
pub fn ack(id: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ack {id}");
    let _ = out.flush();
}

/// What a kill loop did.
#[derive(Debug, Default)]
pub struct Tally {
    pub kills: usize,
    /// Writes acknowledged before a kill, all found again after it.
    pub acknowledged: usize,
}

/// Runs the ignored test `test` (its full path) as a writer on `dir` `kills` times, each
/// killed with SIGKILL 0–250 ms after its first acknowledgement; after each kill, `check` is
/// handed every id acknowledged so far (in any round) and says what is missing.
pub fn kill_loop(
    test: &str,
    var: &str,
    dir: &Path,
    kills: usize,
    mut check: impl FnMut(&[String]) -> Result<(), String>,
) -> Result<Tally, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut acked: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(var, dir)
            .env("BERTH_KILL_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the writer: {e}"))?;
        let stdout = child.stdout.take().ok_or("the writer's stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(id) = l.strip_prefix("ack ") {
                        lines
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(id.to_string());
                    }
                }
            })
        };
        let started = Instant::now();
        while lines.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err(format!("round {round}: the writer acknowledged nothing in 30 s (the store did not open, or a write hung)"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "round {round}: the writer ended ({status}) before any write"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(random_below(250)));
        child.kill().map_err(|e| e.to_string())?;
        let _ = child.wait();
        let _ = reader.join();
        let got = std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner()));
        tally.kills += 1;
        tally.acknowledged += got.len();
        acked.extend(got);
        check(&acked).map_err(|e| format!("after kill {}: {e}", round + 1))?;
    }
    Ok(tally)
}

/// A number below `n`, from the standard library's per-process random hash keys.
fn random_below(n: u64) -> u64 {
    use std::hash::BuildHasher;
    let h = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    h % n.max(1)
}
