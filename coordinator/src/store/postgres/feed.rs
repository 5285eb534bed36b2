//! The change feed in PostgreSQL: a `changes` table appended to by each coordinator's
//! publisher, `NOTIFY berth_changes` in the same transaction (delivered at commit), and a
//! listener on a connection of its own that turns notifications into wakeups, reconnecting
//! with backoff whenever it drops.

use super::{classify, i64_of, u64_of, PgStore};
use crate::store::{ChangeFeed, FeedEntry, StoreError, StoreFuture};
use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

const CHANNEL: &str = "berth_changes";

impl PgStore {
    async fn append_batch(
        &self,
        origin: &str,
        batch: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO changes (origin, kind, record) VALUES ($1, $2, $3::text::jsonb)",
            )
            .await?;
        for (kind, record) in batch {
            tx.execute(&stmt, &[&origin, kind, record]).await?;
        }
        tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn entries_after(&self, seq: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT seq, origin, kind, record::text FROM changes WHERE seq > $1
                 ORDER BY seq LIMIT $2",
            )
            .await?;
        let rows = client
            .query(&stmt, &[&i64_of(seq), &i64::from(limit)])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FeedEntry {
                    seq: u64_of(r.try_get(0)?),
                    origin: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    record: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn newest(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT coalesce(max(seq), 0) FROM changes", &[])
            .await?;
        Ok(u64_of(row.try_get(0)?))
    }
}

/// Listens until the connection drops; every notification is a wakeup.
async fn listen_once(
    pg: &tokio_postgres::Config,
    wake: &mpsc::Sender<()>,
) -> Result<(), StoreError> {
    let (client, mut conn) = pg
        .connect(NoTls)
        .await
        .map_err(|e| classify(StoreError::Postgres(e)))?;
    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    let sql = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            r = &mut listen, if !listening => {
                r.map_err(|e| classify(StoreError::Postgres(e)))?;
                listening = true;
                // Whatever was appended while nobody listened is read now.
                let _ = wake.try_send(());
            }
            m = messages.next() => match m {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    let _ = wake.try_send(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(classify(StoreError::Postgres(e))),
                None => return Ok(()),
            },
        }
    }
}

impl ChangeFeed for PgStore {
    fn append<'a>(&'a self, origin: &'a str, batch: &'a [(String, String)]) -> StoreFuture<'a, ()> {
        Box::pin(self.bounded(move || self.append_batch(origin, batch)))
    }

    fn after(&self, seq: u64, limit: u32) -> StoreFuture<'_, Vec<FeedEntry>> {
        Box::pin(self.bounded(move || self.entries_after(seq, limit)))
    }

    fn head(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.bounded(move || self.newest()))
    }

    fn wakeups(&self) -> StoreFuture<'_, mpsc::Receiver<()>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel(1);
            let pg = self.pg.clone();
            tokio::spawn(async move {
                let mut pause = Duration::from_millis(100);
                while !tx.is_closed() {
                    match listen_once(&pg, &tx).await {
                        Ok(()) => tracing::warn!("store: the feed listener's connection ended"),
                        Err(e) => tracing::warn!(error = %e, "store: feed listener down"),
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            });
            Ok(rx)
        })
    }

    fn prune(&self, age: Duration) -> StoreFuture<'_, u64> {
        Box::pin(self.bounded(move || async move {
            let client = self.client().await?;
            let secs = age.as_secs_f64();
            Ok(client
                .execute(
                    "DELETE FROM changes WHERE at < now() - make_interval(secs => $1)",
                    &[&secs],
                )
                .await?)
        }))
    }
}
