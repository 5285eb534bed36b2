//! The embedded store under `kill -9`: a writer process (this test binary) inserts records and
//! moves counters from four tasks at once, each write flushed before it is acknowledged, and
//! is killed at a random moment; the store must open after every kill and hold every
//! acknowledged write. `BERTH_STORE_KILLS` kills (10 here; `scripts/soak-crash` asks 60).

use super::SledStore;
use crate::store::conformance::record;
use crate::store::Store;
use berth_service::killed::{ack, kill_loop, writer_dir};
use std::collections::HashMap;

const VAR: &str = "BERTH_TEST_STORE_WRITER";
const WRITERS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer a kill loop starts; it runs until killed"]
async fn writer() {
    let Some(dir) = writer_dir(VAR) else { return };
    let round = std::env::var("BERTH_KILL_ROUND").unwrap_or_default();
    let store = std::sync::Arc::new(SledStore::open(&dir).expect("the store opens"));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            let counter = format!("gen{w}");
            if store.container(&counter).await.expect("read").is_none() {
                store
                    .insert_container(record(&counter, "counters", 0))
                    .await
                    .expect("insert");
            }
            for i in 0u64.. {
                let id = format!("r{round}w{w}n{i}");
                store
                    .insert_container(record(&id, "killer", i))
                    .await
                    .expect("insert");
                let mut generation = 0;
                store
                    .update_container(&counter, &mut |r| {
                        r.generation += 1;
                        generation = r.generation;
                        Some(())
                    })
                    .await
                    .expect("update");
                store.flush().await.expect("flush");
                ack(&id);
                ack(&format!("{counter}={generation}"));
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
    let dir = std::env::temp_dir().join(format!("berth-store-killed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let check = |acked: &[String]| -> Result<(), String> {
        rt.block_on(async {
            let store =
                SledStore::open(&dir).map_err(|e| format!("the store does not open: {e}"))?;
            let mut counters: HashMap<&str, u64> = HashMap::new();
            for a in acked {
                if let Some((counter, generation)) = a.split_once('=') {
                    let g: u64 = generation.parse().map_err(|_| format!("ack {a}"))?;
                    let c = counters.entry(counter).or_default();
                    *c = (*c).max(g);
                } else if store
                    .container(a)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    return Err(format!("acknowledged record {a} is gone"));
                }
            }
            for (counter, at_least) in counters {
                let rec = store.container(counter).await.map_err(|e| e.to_string())?;
                let held = rec.map_or(0, |r| r.generation);
                if held < at_least {
                    return Err(format!(
                        "{counter} holds generation {held}, {at_least} was acknowledged"
                    ));
                }
            }
            let listed = store
                .owner_containers("killer")
                .await
                .map_err(|e| e.to_string())?;
            let inserts = acked.iter().filter(|a| !a.contains('=')).count();
            if listed.len() < inserts {
                return Err(format!(
                    "the owner index lists {} of {inserts} acknowledged records",
                    listed.len()
                ));
            }
            Ok(())
        })
    };
    let tally = kill_loop("store::sled::killed::writer", VAR, &dir, kills, check)
        .expect("every acknowledged write survives");
    println!(
        "sled kill loop: {} kills, {} acknowledged writes, all found after reopen",
        tally.kills, tally.acknowledged
    );
    assert_eq!(tally.kills, kills);
    let _ = std::fs::remove_dir_all(&dir);
}
