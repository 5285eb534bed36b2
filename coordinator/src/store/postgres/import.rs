//! Writes a whole export into an empty database in one transaction (`store migrate`), and
//! counts what a database holds, so the command can check the copy.

use super::containers::{encode, insert_row};
use super::{i64_of, PgStore};
use crate::store::migrate::{Counts, Export};
use crate::store::StoreError;
use deadpool_postgres::GenericClient;

impl PgStore {
    pub async fn import(&self, export: &Export) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Nothing may be merged into a live installation's data by mistake.
        let row = tx
            .query_one(
                "SELECT (SELECT count(*) FROM containers) + (SELECT count(*) FROM ssh_keys)
                      + (SELECT count(*) FROM volumes)",
                &[],
            )
            .await?;
        let present: i64 = row.try_get(0)?;
        if present > 0 {
            return Err(StoreError::TargetNotEmpty { rows: present });
        }
        for rec in &export.containers {
            insert_row(&tx, rec).await?;
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO events (container_id, seq, at, kind, message) VALUES ($1, $2, $3, $4, $5)",
            )
            .await?;
        for (id, ev) in &export.events {
            let (seq, at) = (i64_of(ev.seq), i64_of(ev.at));
            tx.execute(&stmt, &[id, &seq, &at, &ev.kind, &ev.message])
                .await?;
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO ssh_keys (owner, id, fingerprint, record) VALUES ($1, $2, $3, $4::text::jsonb)",
            )
            .await?;
        for k in &export.keys {
            let (id, body) = (i64_of(k.id), encode(&k.fingerprint, k)?);
            tx.execute(&stmt, &[&k.owner, &id, &k.fingerprint, &body])
                .await?;
        }
        for host in &export.cordoned {
            tx.execute("INSERT INTO cordoned_hosts (host) VALUES ($1)", &[host])
                .await?;
        }
        for (jti, host) in &export.enrollments {
            tx.execute(
                "INSERT INTO enrollments (jti, host_key) VALUES ($1, $2)",
                &[jti, host],
            )
            .await?;
        }
        for r in &export.idempotency {
            let (at, body) = (i64_of(r.created_at), encode(&r.key, r)?);
            tx.execute(
                "INSERT INTO idempotency (owner, key, created_at, record) VALUES ($1, $2, $3, $4::text::jsonb)",
                &[&r.owner, &r.key, &at, &body],
            )
            .await?;
        }
        for v in &export.volumes {
            let (at, body) = (i64_of(v.created_at), encode(&v.id, v)?);
            tx.execute(
                "INSERT INTO volumes (owner, id, host, created_at, record) VALUES ($1, $2, $3, $4, $5::text::jsonb)",
                &[&v.owner, &v.id, &v.host_key, &at, &body],
            )
            .await?;
        }
        // Sequences continue above everything sled handed out.
        let last_key = export.keys.iter().map(|k| k.id).max().unwrap_or(0);
        let last_id = i64_of(export.last_id.max(last_key) + 1);
        tx.execute("SELECT setval('berth_ids', $1)", &[&last_id])
            .await?;
        let last_seq = i64_of(export.events.iter().map(|e| e.1.seq).max().unwrap_or(0) + 1);
        tx.execute("SELECT setval('event_seq', $1)", &[&last_seq])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM containers), (SELECT count(*) FROM events),
                        (SELECT count(*) FROM ssh_keys), (SELECT count(*) FROM cordoned_hosts),
                        (SELECT count(*) FROM enrollments), (SELECT count(*) FROM idempotency),
                        (SELECT count(*) FROM volumes)",
                &[],
            )
            .await?;
        let n = |i: usize| -> Result<usize, StoreError> {
            Ok(usize::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
        };
        Ok(Counts {
            containers: n(0)?,
            events: n(1)?,
            keys: n(2)?,
            cordoned: n(3)?,
            enrollments: n(4)?,
            idempotency: n(5)?,
            volumes: n(6)?,
        })
    }
}
