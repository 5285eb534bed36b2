//! The conformance suite against a real PostgreSQL: `BERTH_TEST_POSTGRES` is the address of a
//! server the tests may create databases on (`scripts/test` starts a throw-away one). Without
//! it the tests say so and pass, unless `BERTH_TEST_REQUIRE_POSTGRES=1` (set by
//! `scripts/test`), where a missing server is a failure.

use super::PgStore;
use crate::config::{StoreBackend, StoreConfig};
use crate::store::{conformance, Store, StoreError};
use std::time::Duration;

/// A new, empty database on the test server, and its address.
async fn fresh_database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("BERTH_TEST_POSTGRES") else {
        assert!(
            std::env::var("BERTH_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "BERTH_TEST_POSTGRES is not set but BERTH_TEST_REQUIRE_POSTGRES=1"
        );
        eprintln!("BERTH_TEST_POSTGRES is not set: the PostgreSQL store is not tested");
        return None;
    };
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to BERTH_TEST_POSTGRES");
    tokio::spawn(conn);
    let db = format!("berth_unit_{name}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        client.batch_execute(&sql).await.expect("create database");
    }
    let mut cfg: tokio_postgres::Config = admin.parse().expect("url");
    cfg.dbname(&db);
    Some(url_of(&cfg, &db))
}

/// The admin address with another database name, as a key=value string.
fn url_of(cfg: &tokio_postgres::Config, db: &str) -> String {
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    format!("host={host} port={port} user={user} dbname={db}")
}

fn config(url: String) -> StoreConfig {
    StoreConfig {
        backend: StoreBackend::Postgres,
        path: None,
        url: Some(url),
        pool_size: 4,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    let Some(url) = fresh_database("conformance").await else {
        return;
    };
    let store = PgStore::connect(&config(url)).await.expect("connect");
    conformance::run(&store).await;
}

#[tokio::test]
async fn records_survive_a_new_connection_and_migrations_run_once() {
    let Some(url) = fresh_database("reopen").await else {
        return;
    };
    {
        let s = PgStore::connect(&config(url.clone())).await.expect("open");
        conformance::fill(&s).await;
    }
    // Two coordinators starting at once: the advisory lock lets one migrate.
    let cfg = config(url);
    let (a, b) = tokio::join!(PgStore::connect(&cfg), PgStore::connect(&cfg));
    let (a, b) = (a.expect("a"), b.expect("b"));
    conformance::check_filled(&a).await;
    conformance::check_filled(&b).await;
}

#[tokio::test]
async fn two_stores_on_one_database_cannot_both_take_a_name() {
    let Some(url) = fresh_database("names").await else {
        return;
    };
    let a = PgStore::connect(&config(url.clone())).await.expect("a");
    let b = PgStore::connect(&config(url)).await.expect("b");
    let one = conformance::record("dddd0001", "dave", 1);
    let mut two = conformance::record("dddd0002", "dave", 2);
    two.name = one.name.clone();
    a.insert_container(one).await.expect("first");
    match b.insert_container(two).await {
        Err(StoreError::NameTaken { owner, .. }) => assert_eq!(owner, "dave"),
        other => panic!("a second container of that name: {other:?}"),
    }
    assert_eq!(b.owner_containers("dave").await.expect("list").len(), 1);
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_empty() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut cfg = config(format!(
        "host=127.0.0.1 port={port} user=berth dbname=berth"
    ));
    cfg.timeout = Duration::from_millis(500);
    match PgStore::connect(&cfg).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("not unavailable: {other}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

#[tokio::test]
async fn a_sled_store_migrates_whole_and_ids_keep_counting() {
    let Some(url) = fresh_database("migrate").await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("berth-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let last = {
        let sled = crate::store::SledStore::open(&dir).expect("sled");
        conformance::fill(&sled).await;
        sled.add_event("cccc0001", "created", "made".into())
            .await
            .expect("event");
        let id = sled.next_id().await.expect("id");
        sled.put_key(crate::store::KeyRecord {
            id,
            owner: "carol".into(),
            name: "laptop".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "SHA256:carol".into(),
            created_at: 1,
        })
        .await
        .expect("key");
        sled.flush().await.expect("flush");
        id
    };
    // sled lets go of its lock a moment after the last handle.
    let mut copied = None;
    for _ in 0..50 {
        match crate::store::migrate::sled_to_postgres(&dir, &config(url.clone())).await {
            Ok(c) => {
                copied = Some(c);
                break;
            }
            Err(StoreError::Sled(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("migrate: {e}"),
        }
    }
    let counts = copied.expect("sled reopened");
    assert_eq!(
        (
            counts.containers,
            counts.events,
            counts.keys,
            counts.cordoned
        ),
        (2, 1, 1, 1)
    );
    let pg = PgStore::connect(&config(url.clone())).await.expect("pg");
    conformance::check_filled(&pg).await;
    assert_eq!(
        pg.events("cccc0001").await.expect("events")[0].message,
        "made"
    );
    let key = pg.key_with_fingerprint("SHA256:carol").await.expect("fp");
    assert_eq!(key.map(|k| k.id), Some(last));
    assert!(
        pg.next_id().await.expect("id") > last,
        "ids never handed out twice"
    );
    // A second copy into a database that holds data is refused, and changes nothing.
    let again = crate::store::migrate::sled_to_postgres(&dir, &config(url)).await;
    assert!(
        matches!(again, Err(StoreError::TargetNotEmpty { .. })),
        "{again:?}"
    );
    assert_eq!(pg.counts().await.expect("counts"), counts);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_cluster_lock_is_one_holders_across_stores() {
    let Some(url) = fresh_database("locks").await else {
        return;
    };
    let mut short = config(url);
    short.timeout = Duration::from_millis(300);
    let a = PgStore::connect(&short).await.expect("a");
    let b = PgStore::connect(&short).await.expect("b");
    let held = a.cluster_lock("owner/erin").await.expect("a takes it");
    match b.cluster_lock("owner/erin").await {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("not unavailable: {e}"),
        Ok(_) => panic!("two holders of one lock"),
    }
    let _other = b
        .cluster_lock("owner/frank")
        .await
        .expect("another name is free");
    drop(held);
    let mut taken = None;
    for _ in 0..50 {
        if let Ok(l) = b.cluster_lock("owner/erin").await {
            taken = Some(l);
            break;
        }
    }
    assert!(taken.is_some(), "released when its holder dropped it");
}
