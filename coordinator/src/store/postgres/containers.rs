//! Container rows: the record as `jsonb` with its owner, name, host and visibility beside it
//! for the indexes, and the per-host sums (`host_usage`) moved in the same transaction as
//! the row, so placement reads one small table whatever the number of containers.

use super::{i64_of, u64_of, PgStore};
use crate::store::{ContainerRecord, Edit, HostUsage, StoreError};
use berth_shared::protocol::Resources;
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

const COLUMNS: &str = "id, owner, name, host, visible, created_at, record";

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    row: &Row,
) -> Result<T, StoreError> {
    let text: &str = row.try_get("record")?;
    serde_json::from_str(text).map_err(|source| StoreError::Decode {
        key: key.to_string(),
        source,
    })
}

pub(super) fn encode<T: serde::Serialize>(key: &str, rec: &T) -> Result<String, StoreError> {
    serde_json::to_string(rec).map_err(|source| StoreError::Decode {
        key: key.to_string(),
        source,
    })
}

fn records(rows: &[Row]) -> Result<Vec<ContainerRecord>, StoreError> {
    rows.iter()
        .map(|r| decode(r.try_get::<_, &str>("id").unwrap_or("?"), r))
        .collect()
}

/// A unique index said no: which one.
fn taken(e: tokio_postgres::Error, rec: &ContainerRecord) -> StoreError {
    let db = e.as_db_error();
    match db.map(|d| (d.code(), d.constraint())) {
        Some((c, Some("containers_by_name"))) if *c == SqlState::UNIQUE_VIOLATION => {
            StoreError::NameTaken {
                owner: rec.owner.clone(),
                name: rec.name.clone(),
            }
        }
        Some((c, _)) if *c == SqlState::UNIQUE_VIOLATION => {
            StoreError::Exists { id: rec.id.clone() }
        }
        _ => StoreError::Postgres(e),
    }
}

fn placed(r: Option<&ContainerRecord>) -> Option<(&str, Resources)> {
    r.and_then(|r| Some((r.host_key.as_deref()?, r.resources())))
}

/// Moves the per-host sums from what `old` said to what `new` says, in the caller's
/// transaction (the `host_usage` rows stay locked until it commits).
async fn account(
    tx: &impl GenericClient,
    old: Option<&ContainerRecord>,
    new: Option<&ContainerRecord>,
) -> Result<(), StoreError> {
    let (old, new) = (placed(old), placed(new));
    if old == new {
        return Ok(()); // status and usage reports move nothing
    }
    if let Some((host, r)) = old {
        let sql = "UPDATE host_usage SET cpu_millis = cpu_millis - $2, memory_mb = memory_mb - $3,
                   disk_gb = disk_gb - $4, containers = containers - 1 WHERE host = $1";
        let stmt = tx.prepare_cached(sql).await?;
        let (c, m, d) = (i64_of(r.cpu_millis), i64_of(r.memory_mb), i64_of(r.disk_gb));
        tx.execute(&stmt, &[&host, &c, &m, &d]).await?;
        let stmt = tx
            .prepare_cached("DELETE FROM host_usage WHERE host = $1 AND containers <= 0")
            .await?;
        tx.execute(&stmt, &[&host]).await?;
    }
    if let Some((host, r)) = new {
        let sql = "INSERT INTO host_usage (host, cpu_millis, memory_mb, disk_gb, containers)
                   VALUES ($1, $2, $3, $4, 1) ON CONFLICT (host) DO UPDATE SET
                   cpu_millis = host_usage.cpu_millis + EXCLUDED.cpu_millis,
                   memory_mb = host_usage.memory_mb + EXCLUDED.memory_mb,
                   disk_gb = host_usage.disk_gb + EXCLUDED.disk_gb,
                   containers = host_usage.containers + 1";
        let stmt = tx.prepare_cached(sql).await?;
        let (c, m, d) = (i64_of(r.cpu_millis), i64_of(r.memory_mb), i64_of(r.disk_gb));
        tx.execute(&stmt, &[&host, &c, &m, &d]).await?;
    }
    Ok(())
}

/// A new row and its share of the host's sums, in the caller's transaction.
pub(super) async fn insert_row(
    tx: &impl GenericClient,
    rec: &ContainerRecord,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO containers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)"
    );
    write_row(tx, &sql, rec).await?;
    account(tx, None, Some(rec)).await
}

/// Runs `sql` (an INSERT or UPDATE of the columns `COLUMNS`, in order) for `rec`.
async fn write_row(
    tx: &impl GenericClient,
    sql: &str,
    rec: &ContainerRecord,
) -> Result<(), StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    let body = encode(&rec.id, rec)?;
    let created = i64_of(rec.created_at);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &rec.id,
        &rec.owner,
        &rec.name,
        &rec.host_key,
        &rec.is_visible(),
        &created,
        &body,
    ];
    tx.execute(&stmt, &params)
        .await
        .map_err(|e| taken(e, rec))?;
    Ok(())
}

impl PgStore {
    async fn select(
        &self,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ContainerRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT id, record::text AS record FROM containers {filter}");
        let stmt = client.prepare_cached(&sql).await?;
        records(&client.query(&stmt, params).await?)
    }

    pub(super) async fn get_container(
        &self,
        id: &str,
    ) -> Result<Option<ContainerRecord>, StoreError> {
        Ok(self.select("WHERE id = $1", &[&id]).await?.pop())
    }

    pub(super) async fn insert(&self, rec: &ContainerRecord) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        insert_row(&tx, rec).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn update(
        &self,
        id: &str,
        edit: Edit<'_>,
    ) -> Result<Option<ContainerRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "SELECT id, record::text AS record FROM containers WHERE id = $1 FOR UPDATE",
            )
            .await?;
        let Some(row) = tx.query_opt(&stmt, &[&id]).await? else {
            return Ok(None);
        };
        let old: ContainerRecord = decode(id, &row)?;
        let mut rec = old.clone();
        if edit(&mut rec).is_none() {
            return Ok(Some(rec)); // nothing to write: the transaction rolls back
        }
        let sql = "UPDATE containers SET owner = $2, name = $3, host = $4, visible = $5,
                   created_at = $6, record = $7::text::jsonb WHERE id = $1";
        write_row(&tx, sql, &rec).await?;
        account(&tx, Some(&old), Some(&rec)).await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    pub(super) async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "DELETE FROM containers WHERE id = $1 RETURNING id, record::text AS record",
            )
            .await?;
        if let Some(row) = tx.query_opt(&stmt, &[&id]).await? {
            let old: ContainerRecord = decode(id, &row)?;
            account(&tx, Some(&old), None).await?;
        }
        let stmt = tx
            .prepare_cached("DELETE FROM events WHERE container_id = $1")
            .await?;
        tx.execute(&stmt, &[&id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn by_owner(&self, owner: &str) -> Result<Vec<ContainerRecord>, StoreError> {
        self.select(
            "WHERE owner = $1 AND visible ORDER BY created_at DESC, id DESC",
            &[&owner],
        )
        .await
    }

    pub(super) async fn by_name(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<ContainerRecord>, StoreError> {
        let found = self
            .select(
                "WHERE owner = $1 AND name = $2 AND visible",
                &[&owner, &name],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// `None`: the unplaced records.
    pub(super) async fn by_host(
        &self,
        host: Option<&str>,
    ) -> Result<Vec<ContainerRecord>, StoreError> {
        match host {
            Some(h) => self.select("WHERE host = $1 ORDER BY id", &[&h]).await,
            None => self.select("WHERE host IS NULL ORDER BY id", &[]).await,
        }
    }

    pub(super) async fn every_container(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        self.select("ORDER BY id", &[]).await
    }

    pub(super) async fn usage(&self) -> Result<Arc<HashMap<String, HostUsage>>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT host, cpu_millis, memory_mb, disk_gb, containers FROM host_usage
                 WHERE containers > 0",
            )
            .await?;
        let mut out = HashMap::new();
        for row in client.query(&stmt, &[]).await? {
            let used = Resources {
                cpu_millis: u64_of(row.try_get(1)?),
                memory_mb: u64_of(row.try_get(2)?),
                disk_gb: u64_of(row.try_get(3)?),
            };
            let containers = usize::try_from(row.try_get::<_, i64>(4)?).unwrap_or(0);
            out.insert(row.try_get(0)?, HostUsage { used, containers });
        }
        Ok(Arc::new(out))
    }
}
