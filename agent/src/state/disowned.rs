//! Containers the coordinator disowned: it read its store and holds no record of them on this
//! host (deleted while this host never heard, or placed elsewhere). Each is marked with the
//! moment it was first disowned and torn down, volumes and all, once the host's
//! `orphan_grace` has passed since; an Apply for it in the meantime takes it back.

use super::{State, StateError};

impl State {
    /// Marks `id` disowned at `now_ms` unless it already is (the first mark stands, so a
    /// coordinator repeating itself does not push the teardown back). Returns the mark held.
    pub fn disown(&self, id: &str, now_ms: u64) -> Result<u64, StateError> {
        let mark = now_ms.to_be_bytes();
        match self
            .disowned
            .compare_and_swap(id, None::<&[u8]>, Some(&mark[..]))?
        {
            Ok(()) => Ok(now_ms),
            Err(e) => Ok(e.current.as_deref().map_or(now_ms, millis)),
        }
    }

    /// The coordinator claims `id` again: it is no longer disowned.
    pub fn reclaim(&self, id: &str) -> Result<bool, StateError> {
        Ok(self.disowned.remove(id)?.is_some())
    }

    pub fn is_disowned(&self, id: &str) -> Result<bool, StateError> {
        Ok(self.disowned.contains_key(id)?)
    }

    /// Every disowned container with the unix ms it was first disowned.
    pub fn disowned(&self) -> Result<Vec<(String, u64)>, StateError> {
        self.disowned
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), millis(&v)))
            })
            .collect()
    }
}

fn millis(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use crate::state::State;
    use crate::testing::spec;
    use berth_shared::protocol::DesiredState;

    #[test]
    fn the_first_mark_stands_until_reclaimed_or_removed() {
        let s = State::temporary().unwrap();
        s.offer_spec(&spec("aaaa1111", DesiredState::Running, &[]))
            .unwrap();
        assert_eq!(s.disown("aaaa1111", 100).unwrap(), 100);
        assert_eq!(s.disown("aaaa1111", 900).unwrap(), 100);
        assert_eq!(s.disowned().unwrap(), vec![("aaaa1111".to_string(), 100)]);
        assert!(s.reclaim("aaaa1111").unwrap());
        assert!(s.disowned().unwrap().is_empty());
        s.disown("aaaa1111", 1000).unwrap();
        s.remove("aaaa1111").unwrap();
        assert!(s.disowned().unwrap().is_empty());
    }
}
