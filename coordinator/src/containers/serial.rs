//! One change at a time per container: start, stop, actions, PATCH, mounts and delete of
//! the same container wait for each other, so each answers with what its own change led to
//! (a start sent beside a stop answers `running` after the stop answered `stopped`), never
//! with the other's half-done state. The same table, keyed by owner, serialises one owner's
//! quota and name decisions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub(crate) struct Serial(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// The turn of one change; the next waits until it is dropped.
pub(crate) struct Turn<'a> {
    serial: &'a Serial,
    id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Serial {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the container's earlier changes to finish.
    pub(crate) async fn turn(&self, id: &str) -> Turn<'_> {
        let lock = self.map().entry(id.to_string()).or_default().clone();
        let guard = lock.lock_owned().await;
        Turn {
            serial: self,
            id: id.to_string(),
            guard: Some(guard),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.serial.map();
        // Forget the lock once nobody holds or waits for it.
        if map.get(&self.id).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Serial;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn changes_of_one_container_take_turns_and_the_table_empties() {
        let serial = Arc::new(Serial::default());
        let inside = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (serial, inside) = (serial.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = serial.turn("abcd1234").await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let other = serial.turn("zzzz0000").await;
        drop(other);
        assert!(serial.map().is_empty());
    }
}
