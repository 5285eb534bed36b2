//! The smaller tables: container history, SSH keys, cordons, redeemed join tokens,
//! `Idempotency-Key` records and the id sequence. Each call is one statement or one short
//! transaction; uniqueness is the database's (a fingerprint, a join token, a key per owner),
//! so two coordinators racing cannot both win.

use super::containers::{decode, encode};
use super::{i64_of, u64_of, PgStore};
use crate::store::{EventRecord, IdempotencyRecord, KeyRecord, StoreError, MAX_EVENTS};
use deadpool_postgres::GenericClient;
use std::collections::BTreeSet;
use tokio_postgres::error::SqlState;

impl PgStore {
    pub(super) async fn run(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.execute(&stmt, params).await?)
    }

    pub(super) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query(&stmt, params).await?)
    }

    pub(super) async fn push_event(
        &self,
        id: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let at = i64_of(berth_shared::time::now_unix().0);
        let stmt = tx
            .prepare_cached(
                "INSERT INTO events (container_id, seq, at, kind, message)
                 VALUES ($1, nextval('event_seq'), $2, $3, $4)",
            )
            .await?;
        tx.execute(&stmt, &[&id, &at, &kind, &message]).await?;
        let keep = i64_of(MAX_EVENTS as u64);
        let stmt = tx
            .prepare_cached(
                "DELETE FROM events WHERE container_id = $1 AND seq <= (
                    SELECT seq FROM events WHERE container_id = $1
                    ORDER BY seq DESC OFFSET $2 LIMIT 1)",
            )
            .await?;
        tx.execute(&stmt, &[&id, &keep]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn history(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .rows(
                "SELECT seq, at, kind, message FROM events WHERE container_id = $1
                 ORDER BY seq DESC",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRecord {
                    seq: u64_of(r.try_get(0)?),
                    at: u64_of(r.try_get(1)?),
                    kind: r.try_get(2)?,
                    message: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub(super) async fn new_id(&self) -> Result<u64, StoreError> {
        let rows = self.rows("SELECT nextval('berth_ids')", &[]).await?;
        let id: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or_default();
        Ok(u64_of(id))
    }

    pub(super) async fn store_key(&self, rec: &KeyRecord) -> Result<(), StoreError> {
        let body = encode(&rec.fingerprint, rec)?;
        let id = i64_of(rec.id);
        self.run(
            "INSERT INTO ssh_keys (owner, id, fingerprint, record) VALUES ($1, $2, $3, $4::text::jsonb)
             ON CONFLICT (owner, id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             record = EXCLUDED.record",
            &[&rec.owner, &id, &rec.fingerprint, &body],
        )
        .await
        .map_err(|e| match &e {
            StoreError::Postgres(pg) if pg.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                StoreError::KeyTaken {
                    fingerprint: rec.fingerprint.clone(),
                }
            }
            _ => e,
        })?;
        Ok(())
    }

    pub(super) async fn keys_of(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = self
            .rows(
                "SELECT record::text AS record FROM ssh_keys WHERE owner = $1 ORDER BY id",
                &[&owner],
            )
            .await?;
        rows.iter().map(|r| decode(owner, r)).collect()
    }

    pub(super) async fn key_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let rows = self
            .rows(
                "SELECT record::text AS record FROM ssh_keys WHERE fingerprint = $1",
                &[&fingerprint],
            )
            .await?;
        rows.first().map(|r| decode(fingerprint, r)).transpose()
    }

    pub(super) async fn drop_key(&self, owner: &str, id: u64) -> Result<bool, StoreError> {
        let id = i64_of(id);
        let n = self
            .run(
                "DELETE FROM ssh_keys WHERE owner = $1 AND id = $2",
                &[&owner, &id],
            )
            .await?;
        Ok(n == 1)
    }

    pub(super) async fn cordon(&self, host: &str, cordoned: bool) -> Result<(), StoreError> {
        let sql = if cordoned {
            "INSERT INTO cordoned_hosts (host) VALUES ($1) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM cordoned_hosts WHERE host = $1"
        };
        self.run(sql, &[&host]).await.map(drop)
    }

    pub(super) async fn cordons(&self) -> Result<BTreeSet<String>, StoreError> {
        let rows = self.rows("SELECT host FROM cordoned_hosts", &[]).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub(super) async fn redeem(&self, jti: &str, host_key: &str) -> Result<bool, StoreError> {
        let n = self
            .run(
                "INSERT INTO enrollments (jti, host_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&jti, &host_key],
            )
            .await?;
        Ok(n == 1)
    }

    pub(super) async fn reserve(
        &self,
        rec: &IdempotencyRecord,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let body = encode(&rec.key, rec)?;
        let at = i64_of(rec.created_at);
        let n = self
            .run(
                "INSERT INTO idempotency (owner, key, created_at, record)
                 VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT DO NOTHING",
                &[&rec.owner, &rec.key, &at, &body],
            )
            .await?;
        if n == 1 {
            return Ok(None);
        }
        let rows = self
            .rows(
                "SELECT record::text AS record FROM idempotency WHERE owner = $1 AND key = $2",
                &[&rec.owner, &rec.key],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(Some(decode(&rec.key, r)?)),
            // Removed in between: taken as stored would be wrong, so say it is there.
            None => Ok(Some(rec.clone())),
        }
    }

    pub(super) async fn answer(&self, rec: &IdempotencyRecord) -> Result<(), StoreError> {
        let body = encode(&rec.key, rec)?;
        let at = i64_of(rec.created_at);
        self.run(
            "INSERT INTO idempotency (owner, key, created_at, record)
             VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT (owner, key) DO UPDATE SET
             created_at = EXCLUDED.created_at, record = EXCLUDED.record",
            &[&rec.owner, &rec.key, &at, &body],
        )
        .await
        .map(drop)
    }

    pub(super) async fn forget(&self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.run(
            "DELETE FROM idempotency WHERE owner = $1 AND key = $2",
            &[&owner, &key],
        )
        .await
        .map(drop)
    }

    pub(super) async fn expire(&self, before: u64) -> Result<usize, StoreError> {
        let before = i64_of(before);
        let n = self
            .run("DELETE FROM idempotency WHERE created_at < $1", &[&before])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
