//! `Idempotency-Key`: a POST retried with the same key by the same user runs once. The key is
//! reserved in the store before the request runs and its answer stored (and flushed) before
//! it goes out, so a retry — concurrent, or after a coordinator restart — gets the first
//! answer. A 2xx answer is kept for `api.idempotency_ttl`; a failed request changed nothing,
//! so its reservation is dropped and a retry runs again. A reservation with no answer found
//! after a restart means the coordinator died mid-request: its outcome is unknown, and the
//! retry is refused (`409`) rather than risking a second container.

use crate::containers::serial::Serial;
use crate::error::Error;
use crate::store::{IdempotencyRecord, Store, StoredAnswer};
use berth_shared::time::now_unix;
use std::sync::Arc;
use std::time::Duration;

/// The longest key accepted.
pub const MAX_KEY: usize = 255;

pub struct Idempotency {
    store: Arc<dyn Store>,
    ttl: Duration,
    /// One request per (user, key) at a time in this coordinator.
    turns: Serial,
}

/// What to do with a request that carries a key.
pub enum Begin<'a> {
    /// Nobody ran it: run it, then `finish`.
    Run(Reservation<'a>),
    /// It ran: answer this again.
    Replay(StoredAnswer),
}

/// A reserved key, held while its request runs.
pub struct Reservation<'a> {
    owner: &'a Idempotency,
    rec: IdempotencyRecord,
    _turn: crate::containers::serial::Turn<'a>,
}

/// SHA-256 of what makes two requests the same request.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut d = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
        d.update(part);
    }
    berth_shared::ids::hex(d.finish().as_ref())
}

/// 1–255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY} visible ASCII characters"),
        ));
    }
    Ok(())
}

impl Idempotency {
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Idempotency {
        Idempotency {
            store,
            ttl,
            turns: Serial::default(),
        }
    }

    /// Reserves `key` for `owner`'s request, or finds what became of an earlier one: the
    /// same key with another request is `422`, one that never finished `409`.
    pub async fn begin(
        &self,
        owner: &str,
        key: &str,
        fingerprint: String,
    ) -> Result<Begin<'_>, Error> {
        check_key(key)?;
        let turn = self.turns.turn(&format!("{owner}\0{key}")).await;
        let now = now_unix().0;
        let rec = IdempotencyRecord {
            owner: owner.to_string(),
            key: key.to_string(),
            fingerprint,
            created_at: now,
            answer: None,
        };
        for _ in 0..2 {
            let Some(found) = self.store.reserve_idempotency(rec.clone()).await? else {
                return Ok(Begin::Run(Reservation {
                    owner: self,
                    rec,
                    _turn: turn,
                }));
            };
            if found.created_at.saturating_add(self.ttl.as_secs()) < now {
                self.store.remove_idempotency(owner, key).await?;
                continue;
            }
            if found.fingerprint != rec.fingerprint {
                return Err(Error::invalid(
                    "Idempotency-Key",
                    "was used with a different request: a key names one request",
                ));
            }
            return match found.answer {
                Some(a) => Ok(Begin::Replay(a)),
                None => Err(Error::Conflict(
                    "a request with this Idempotency-Key was cut short when the coordinator \
                     stopped, so its outcome is unknown: check the resource, then use a new key"
                        .into(),
                )),
            };
        }
        Err(Error::Conflict(
            "the Idempotency-Key is being replaced; retry".into(),
        ))
    }

    /// Removes reservations older than the TTL; how many.
    pub async fn expire(&self) -> Result<usize, Error> {
        let before = now_unix().0.saturating_sub(self.ttl.as_secs());
        Ok(self.store.expire_idempotency(before).await?)
    }
}

impl Reservation<'_> {
    /// Keeps a 2xx answer (durably, before it is sent); anything else frees the key.
    pub async fn finish(mut self, status: u16, body: &[u8]) -> Result<(), Error> {
        let store = &self.owner.store;
        if (200..300).contains(&status) {
            self.rec.answer = Some(StoredAnswer {
                status,
                body: String::from_utf8_lossy(body).into_owned(),
            });
            store.put_idempotency(self.rec.clone()).await?;
        } else {
            store
                .remove_idempotency(&self.rec.owner, &self.rec.key)
                .await?;
        }
        store.flush().await?;
        Ok(())
    }
}
