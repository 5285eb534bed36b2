//! Volume rows: the record as `jsonb`, keyed by owner and id (another owner's id finds no
//! row), with the host beside it for the host index. One statement per call.

use super::containers::{decode, encode};
use super::{i64_of, PgStore};
use crate::store::{StoreError, VolumeRecord};

const SELECT: &str = "SELECT id, record::text AS record FROM volumes";

impl PgStore {
    fn volume_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<VolumeRecord>, StoreError> {
        rows.iter()
            .map(|r| decode(r.try_get::<_, &str>("id").unwrap_or("?"), r))
            .collect()
    }

    pub(super) async fn volume_row(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<VolumeRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE owner = $1 AND id = $2");
        let rows = self.rows(&sql, &[&owner, &id]).await?;
        Ok(Self::volume_rows(&rows)?.pop())
    }

    pub(super) async fn store_volume(&self, rec: &VolumeRecord) -> Result<(), StoreError> {
        let body = encode(&rec.id, rec)?;
        let created = i64_of(rec.created_at);
        self.run(
            "INSERT INTO volumes (owner, id, host, created_at, record)
             VALUES ($1, $2, $3, $4, $5::text::jsonb)
             ON CONFLICT (owner, id) DO UPDATE SET record = EXCLUDED.record",
            &[&rec.owner, &rec.id, &rec.host_key, &created, &body],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn volumes_of(&self, owner: &str) -> Result<Vec<VolumeRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE owner = $1 ORDER BY created_at, id");
        Self::volume_rows(&self.rows(&sql, &[&owner]).await?)
    }

    pub(super) async fn volumes_on(&self, host: &str) -> Result<Vec<VolumeRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE host = $1 ORDER BY id");
        Self::volume_rows(&self.rows(&sql, &[&host]).await?)
    }

    pub(super) async fn drop_volume(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        self.run(
            "DELETE FROM volumes WHERE owner = $1 AND id = $2",
            &[&owner, &id],
        )
        .await?;
        Ok(())
    }
}
