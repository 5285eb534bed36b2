//! The agent's state under `kill -9`: a writer process (this test binary) stores specs and
//! raises spec generations from four tasks at once, each flushed before it is acknowledged,
//! and is killed at a random moment; the state must open after every kill and hold every
//! acknowledged write. `BERTH_STORE_KILLS` kills (10 here; `scripts/soak-crash` asks 60).

use super::State;
use crate::testing::spec;
use berth_service::killed::{ack, kill_loop, writer_dir};
use berth_shared::protocol::DesiredState;
use std::collections::HashMap;

const VAR: &str = "BERTH_TEST_STATE_WRITER";
const WRITERS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer a kill loop starts; it runs until killed"]
async fn writer() {
    let Some(dir) = writer_dir(VAR) else { return };
    let round = std::env::var("BERTH_KILL_ROUND").unwrap_or_default();
    let state = State::open(&dir).expect("the state opens");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let state = state.clone();
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            let counter = format!("gen{w}");
            let first = state
                .spec(&counter)
                .expect("read")
                .map_or(1, |s| s.generation + 1);
            for (i, next) in (first..).enumerate() {
                let id = format!("r{round}w{w}n{i}");
                state
                    .offer_spec(&spec(&id, DesiredState::Running, &[]))
                    .expect("store");
                let mut c = spec(&counter, DesiredState::Running, &[]);
                c.generation = next;
                state.offer_spec(&c).expect("store");
                state.flush().await.expect("flush");
                ack(&id);
                ack(&format!("{counter}={next}"));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[test]
fn every_acknowledged_write_survives_kill_9() {
    let kills = std::env::var("BERTH_STORE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("berth-state-killed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let check = |acked: &[String]| -> Result<(), String> {
        let state = State::open(&dir).map_err(|e| format!("the state does not open: {e}"))?;
        let mut counters: HashMap<&str, u64> = HashMap::new();
        for a in acked {
            if let Some((counter, generation)) = a.split_once('=') {
                let g: u64 = generation.parse().map_err(|_| format!("ack {a}"))?;
                let c = counters.entry(counter).or_default();
                *c = (*c).max(g);
            } else if state.spec(a).map_err(|e| e.to_string())?.is_none() {
                return Err(format!("acknowledged spec {a} is gone"));
            }
        }
        for (counter, at_least) in counters {
            let held = state
                .spec(counter)
                .map_err(|e| e.to_string())?
                .map_or(0, |s| s.generation);
            if held < at_least {
                return Err(format!(
                    "{counter} holds generation {held}, {at_least} was acknowledged"
                ));
            }
        }
        state
            .specs()
            .map_err(|e| format!("reading every spec: {e}"))?;
        Ok(())
    };
    let tally = kill_loop("state::killed::writer", VAR, &dir, kills, check)
        .expect("every acknowledged write survives");
    println!(
        "agent state kill loop: {} kills, {} acknowledged writes, all found after reopen",
        tally.kills, tally.acknowledged
    );
    assert_eq!(tally.kills, kills);
    let _ = std::fs::remove_dir_all(&dir);
}
