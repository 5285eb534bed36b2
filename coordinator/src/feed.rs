//! The change feed between coordinators that share a store: what this coordinator publishes
//! on its event bus is appended to the store's feed (batched, retried while the database is
//! away), and what the others appended is delivered onto this bus, so a `/compute/ws`
//! watcher or a `wait` here sees a change made through any coordinator. The reader wakes on
//! the store's notifications and polls every second besides; entries may commit out of
//! `seq` order, so a gap is waited on for `GAP_GRACE` before it is taken as a sequence
//! number that never committed.

use crate::events::{ContainerEvent, EventBus, EventKind};
use crate::store::{ContainerRecord, FeedEntry, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a missing `seq` below newer ones is waited for.
const GAP_GRACE: Duration = Duration::from_secs(5);
const PAGE: u32 = 500;
const BATCH: usize = 256;
/// Entries are kept this long (readers are seconds behind at most).
const KEEP: Duration = Duration::from_secs(600);

/// Runs the publisher and the reader until dropped.
pub async fn run(
    store: Arc<dyn Store>,
    origin: String,
    bus: EventBus,
    outbox: mpsc::Receiver<ContainerEvent>,
) {
    tokio::join!(
        publish(store.clone(), origin.clone(), outbox),
        read(store, origin, bus)
    );
}

async fn publish(
    store: Arc<dyn Store>,
    origin: String,
    mut outbox: mpsc::Receiver<ContainerEvent>,
) {
    let Some(feed) = store.feed() else { return };
    while let Some(first) = outbox.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match outbox.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        let rows: Vec<(String, String)> = batch
            .iter()
            .filter_map(|ev| {
                let json = serde_json::to_string(&*ev.record).ok()?;
                Some((ev.kind.as_str().to_string(), json))
            })
            .collect();
        let mut pause = Duration::from_millis(100);
        while let Err(e) = feed.append(&origin, &rows).await {
            tracing::warn!(error = %e, events = rows.len(), "feed: cannot publish; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

async fn read(store: Arc<dyn Store>, origin: String, bus: EventBus) {
    let Some(feed) = store.feed() else { return };
    let (mut wake, head) = loop {
        match tokio::try_join!(feed.wakeups(), feed.head()) {
            Ok(started) => break started,
            Err(e) => {
                tracing::warn!(error = %e, "feed: cannot start reading; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut cursor = Cursor::at(head);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = wake.recv() => {}
            _ = tick.tick() => {}
        }
        let mut from = cursor.low;
        loop {
            let page = match feed.after(from, PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "feed: cannot read; retrying");
                    break;
                }
            };
            let full = page.len() == PAGE as usize;
            from = page.last().map_or(from, |e| e.seq);
            for e in cursor.take(page) {
                if e.origin != origin {
                    if let Some(ev) = event_of(&e) {
                        bus.deliver(ev);
                    }
                }
            }
            if !full {
                break;
            }
        }
        cursor.advance(Instant::now());
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = Instant::now();
            if let Err(e) = feed.prune(KEEP).await {
                tracing::warn!(error = %e, "feed: cannot prune");
            }
        }
    }
}

fn event_of(e: &FeedEntry) -> Option<ContainerEvent> {
    let kind = EventKind::parse(&e.kind)?;
    match serde_json::from_str::<ContainerRecord>(&e.record) {
        Ok(rec) => Some(ContainerEvent::of(&rec, kind)),
        Err(err) => {
            tracing::warn!(seq = e.seq, error = %err, "feed: an entry this coordinator cannot read");
            None
        }
    }
}

/// Where the reader is: every `seq` up to `low` was delivered or given up on; `seen` are
/// those above it already delivered.
#[derive(Debug)]
struct Cursor {
    low: u64,
    seen: BTreeSet<u64>,
    gap: Option<(u64, Instant)>,
}

impl Cursor {
    fn at(low: u64) -> Cursor {
        Cursor {
            low,
            seen: BTreeSet::new(),
            gap: None,
        }
    }

    /// The entries not delivered yet.
    fn take(&mut self, entries: Vec<FeedEntry>) -> Vec<FeedEntry> {
        entries
            .into_iter()
            .filter(|e| e.seq > self.low && self.seen.insert(e.seq))
            .collect()
    }

    /// Moves `low` over what was delivered, and over gaps older than `GAP_GRACE`.
    fn advance(&mut self, now: Instant) {
        loop {
            let next = self.low + 1;
            if self.seen.remove(&next) {
                self.low = next;
                continue;
            }
            if self.seen.is_empty() {
                self.gap = None;
                return;
            }
            match self.gap {
                Some((at, since)) if at == next && now.duration_since(since) >= GAP_GRACE => {
                    self.low = next;
                }
                Some((at, _)) if at == next => return,
                _ => {
                    self.gap = Some((next, now));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> FeedEntry {
        FeedEntry {
            seq,
            origin: "o".into(),
            kind: "container_status".into(),
            record: String::new(),
        }
    }

    fn seqs(v: &[FeedEntry]) -> Vec<u64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_late_commit_below_newer_entries_is_still_delivered_once() {
        let t0 = Instant::now();
        let mut c = Cursor::at(10);
        // 11 has not committed yet; 12 and 13 have.
        assert_eq!(seqs(&c.take(vec![entry(12), entry(13)])), [12, 13]);
        c.advance(t0);
        assert_eq!(c.low, 10, "waits at the gap");
        // Read again from the gap: 11 arrived, 12 and 13 are not delivered twice.
        assert_eq!(seqs(&c.take(vec![entry(11), entry(12), entry(13)])), [11]);
        c.advance(t0 + Duration::from_millis(10));
        assert_eq!((c.low, c.seen.len()), (13, 0));
    }

    #[test]
    fn a_gap_that_never_fills_is_passed_after_the_grace() {
        let t0 = Instant::now();
        let mut c = Cursor::at(0);
        assert_eq!(seqs(&c.take(vec![entry(2)])), [2]);
        c.advance(t0);
        c.advance(t0 + Duration::from_secs(1));
        assert_eq!(c.low, 0);
        c.advance(t0 + GAP_GRACE);
        assert_eq!(c.low, 2, "1 rolled back: passed over");
        assert!(
            c.take(vec![entry(1), entry(2)]).is_empty(),
            "nothing at or below low again"
        );
    }
}
