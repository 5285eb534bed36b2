//! The PostgreSQL schema as numbered migrations, applied at start under an advisory lock so
//! coordinators starting together apply each one once. A migration, once released, is never
//! edited: a change is a new one. The SQL is plain (no extensions, no stored procedures) so
//! PostgreSQL-compatible distributed databases take it too.

use super::super::StoreError;
use tokio_postgres::Client;

/// The key of the advisory lock that serialises migrations (any constant of our own).
const MIGRATION_LOCK: i64 = 0x6265_7274_685f_6d67; // "berth_mg"

/// `(version, what it does, SQL)`, in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "containers, history, keys, cordons, enrollments, idempotency",
        r#"
CREATE TABLE containers (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    name        text NOT NULL,
    -- NULL while unplaced.
    host        text,
    -- false once the user deleted it (kept until the host confirms).
    visible     boolean NOT NULL,
    created_at  bigint NOT NULL,
    record      jsonb NOT NULL
);
CREATE INDEX containers_by_owner ON containers (owner, created_at DESC, id DESC);
CREATE UNIQUE INDEX containers_by_name ON containers (owner, name) WHERE visible;
CREATE INDEX containers_by_host ON containers (host, id);

-- What the containers placed on a host add up to, moved in the transaction of every write.
CREATE TABLE host_usage (
    host        text PRIMARY KEY,
    cpu_millis  bigint NOT NULL,
    memory_mb   bigint NOT NULL,
    disk_gb     bigint NOT NULL,
    containers  bigint NOT NULL
);

CREATE TABLE events (
    container_id text NOT NULL,
    seq          bigint NOT NULL,
    at           bigint NOT NULL,
    kind         text NOT NULL,
    message      text NOT NULL,
    PRIMARY KEY (container_id, seq)
);
CREATE SEQUENCE event_seq;

-- Ids of keys and ingress rules.
CREATE SEQUENCE berth_ids;

CREATE TABLE ssh_keys (
    owner       text NOT NULL,
    id          bigint NOT NULL,
    fingerprint text NOT NULL UNIQUE,
    record      jsonb NOT NULL,
    PRIMARY KEY (owner, id)
);

CREATE TABLE cordoned_hosts (host text PRIMARY KEY);

CREATE TABLE enrollments (jti text PRIMARY KEY, host_key text NOT NULL);

CREATE TABLE idempotency (
    owner       text NOT NULL,
    key         text NOT NULL,
    created_at  bigint NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_by_age ON idempotency (created_at);
"#,
    ),
    (
        2,
        "the change feed between coordinators",
        r#"
-- What one coordinator published, for the others' watchers; kept a few minutes.
CREATE TABLE changes (
    seq         bigserial PRIMARY KEY,
    origin      text NOT NULL,
    kind        text NOT NULL,
    record      jsonb NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_by_age ON changes (at);
"#,
    ),
    (
        3,
        "volumes",
        r#"
-- Users' volumes; which container mounts one is in the containers' records.
CREATE TABLE volumes (
    owner       text NOT NULL,
    id          text NOT NULL,
    host        text NOT NULL,
    created_at  bigint NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX volumes_by_host ON volumes (host, id);
"#,
    ),
];

/// Brings the database to the newest schema; returns the version it is at.
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     integer PRIMARY KEY,
            description text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    let current: i32 = row.get(0);
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > newest {
        return Err(StoreError::SchemaNewer {
            database: current,
            ours: newest,
        });
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .await?;
        tracing::info!(version, description, "store: migration applied");
    }
    tx.commit().await?;
    Ok(newest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_increase_by_one() {
        for (i, m) in super::MIGRATIONS.iter().enumerate() {
            assert_eq!(m.0 as usize, i + 1, "{}", m.1);
        }
    }
}
