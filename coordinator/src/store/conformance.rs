//! The store conformance suite: what every `Store` backend must do, written against the trait
//! alone. A backend's tests call `run` on a fresh, empty store (and `fill` / `check_filled`
//! across a reopen). Panics on the first broken promise.

use super::{
    ContainerRecord, HostUsage, IdempotencyRecord, KeyRecord, Store, StoredAnswer, VolumeRecord,
    MAX_EVENTS,
};
use berth_shared::protocol::{DesiredState, Resources};

/// A pending, unplaced record.
pub fn record(id: &str, owner: &str, created_at: u64) -> ContainerRecord {
    let rec = serde_json::json!({
        "id": id, "owner": owner, "name": format!("n-{id}"), "instance_type": "tiny",
        "cpu_millis": 1000, "memory_mb": 512, "storage_gb": 5, "ssh_key_ids": [1],
        "ssh_enabled": false, "mount_paths": ["/root"], "image": "img",
        "created_at": created_at, "desired": "running", "generation": 1,
        "status": "pending", "observed_generation": 0,
    });
    serde_json::from_value(rec).expect("a record")
}

/// What `n` conformance records (1 core, 512 MB, 5 GB each) add up to.
fn usage(n: u64) -> HostUsage {
    HostUsage {
        used: Resources {
            cpu_millis: 1000 * n,
            memory_mb: 512 * n,
            disk_gb: 5 * n,
        },
        containers: n as usize,
    }
}

async fn usage_of(s: &dyn Store, host: &str) -> Option<HostUsage> {
    s.host_usage().await.expect("usage").get(host).copied()
}

fn ids(v: &[ContainerRecord]) -> Vec<&str> {
    v.iter().map(|r| r.id.as_str()).collect()
}

pub async fn run(s: &dyn Store) {
    containers_and_indexes(s).await;
    names(s).await;
    removal(s).await;
    history(s).await;
    keys_cordons_enrollments(s).await;
    idempotency(s).await;
    volumes(s).await;
}

/// A volume of `owner` on `host`.
pub fn volume(id: &str, owner: &str, host: &str, created_at: u64) -> VolumeRecord {
    VolumeRecord {
        id: id.into(),
        owner: owner.into(),
        name: format!("v-{id}"),
        size_gb: 2,
        host_key: host.into(),
        region: Some("local".into()),
        ready: false,
        deleted: false,
        used_bytes: None,
        reason: None,
        created_at,
    }
}

fn volume_ids(v: &[VolumeRecord]) -> Vec<&str> {
    v.iter().map(|r| r.id.as_str()).collect()
}

async fn volumes(s: &dyn Store) {
    s.put_volume(volume("volaaaa0002", "dora", "h1", 2))
        .await
        .expect("put");
    s.put_volume(volume("volaaaa0001", "dora", "h2", 1))
        .await
        .expect("put");
    s.put_volume(volume("volaaaa0003", "eve", "h1", 3))
        .await
        .expect("put");
    assert_eq!(
        volume_ids(&s.owner_volumes("dora").await.expect("owner")),
        ["volaaaa0001", "volaaaa0002"],
        "an owner's volumes, oldest first, nobody else's"
    );
    assert_eq!(
        volume_ids(&s.host_volumes("h1").await.expect("host")),
        ["volaaaa0002", "volaaaa0003"]
    );
    assert!(
        s.volume("eve", "volaaaa0001").await.expect("get").is_none(),
        "another owner's id finds nothing"
    );
    let mut v = s
        .volume("dora", "volaaaa0002")
        .await
        .expect("get")
        .expect("there");
    v.size_gb = 9;
    v.ready = true;
    s.put_volume(v.clone()).await.expect("update");
    assert_eq!(s.volume("dora", "volaaaa0002").await.expect("get"), Some(v));
    assert_eq!(
        s.host_volumes("h1").await.expect("host").len(),
        2,
        "an update is not a second row"
    );
    s.remove_volume("dora", "volaaaa0002")
        .await
        .expect("remove");
    s.remove_volume("dora", "volaaaa0002")
        .await
        .expect("removing twice is fine");
    assert_eq!(
        volume_ids(&s.host_volumes("h1").await.expect("host")),
        ["volaaaa0003"]
    );
    assert_eq!(
        volume_ids(&s.owner_volumes("dora").await.expect("owner")),
        ["volaaaa0001"]
    );
}

async fn idempotency(s: &dyn Store) {
    let rec = |owner: &str, key: &str, at: u64| IdempotencyRecord {
        owner: owner.into(),
        key: key.into(),
        fingerprint: format!("fp-{owner}-{key}"),
        created_at: at,
        answer: None,
    };
    assert_eq!(
        s.reserve_idempotency(rec("alice", "k1", 10))
            .await
            .expect("reserve"),
        None
    );
    let again = s
        .reserve_idempotency(rec("alice", "k1", 11))
        .await
        .expect("reserve");
    assert_eq!(
        again,
        Some(rec("alice", "k1", 10)),
        "the first reservation stays"
    );
    assert_eq!(
        s.reserve_idempotency(rec("bob", "k1", 10))
            .await
            .expect("reserve"),
        None,
        "keys are per user"
    );
    let mut done = rec("alice", "k1", 10);
    done.answer = Some(StoredAnswer {
        status: 201,
        body: "{}".into(),
    });
    s.put_idempotency(done.clone()).await.expect("put");
    let got = s
        .reserve_idempotency(rec("alice", "k1", 12))
        .await
        .expect("reserve");
    assert_eq!(got, Some(done), "the answer is kept");
    s.remove_idempotency("bob", "k1").await.expect("remove");
    assert_eq!(
        s.reserve_idempotency(rec("bob", "k1", 20))
            .await
            .expect("reserve"),
        None
    );
    assert_eq!(
        s.expire_idempotency(15).await.expect("expire"),
        1,
        "alice's, from 10"
    );
    assert_eq!(
        s.reserve_idempotency(rec("alice", "k1", 30))
            .await
            .expect("reserve"),
        None
    );
}

async fn containers_and_indexes(s: &dyn Store) {
    s.insert_container(record("aaaa0001", "alice", 1))
        .await
        .expect("insert");
    s.insert_container(record("aaaa0002", "alice", 2))
        .await
        .expect("insert");
    s.insert_container(record("bbbb0001", "bob", 3))
        .await
        .expect("insert");
    assert!(
        s.insert_container(record("aaaa0001", "eve", 9))
            .await
            .is_err(),
        "id reused"
    );
    let mine = s.owner_containers("alice").await.expect("list");
    assert_eq!(
        ids(&mine),
        ["aaaa0002", "aaaa0001"],
        "newest first, own only"
    );
    assert_eq!(s.unplaced_containers().await.expect("unplaced").len(), 3);

    let placed = s
        .update_container("aaaa0001", &mut |r| {
            r.host_key = Some("h1".into());
            Some(())
        })
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(placed.host_key.as_deref(), Some("h1"));
    assert_eq!(
        ids(&s.host_containers("h1").await.expect("host")),
        ["aaaa0001"]
    );
    assert!(!ids(&s.unplaced_containers().await.expect("u")).contains(&"aaaa0001"));
    assert!(s.host_containers("h2").await.expect("host").is_empty());
    assert_eq!(
        usage_of(s, "h1").await,
        Some(usage(1)),
        "placed records count"
    );
    assert_eq!(
        s.host_usage().await.expect("u").len(),
        1,
        "unplaced ones do not"
    );
    // A resize moves the sums; moving a record moves them between hosts.
    s.update_container("bbbb0001", &mut |r| {
        r.host_key = Some("h1".into());
        Some(())
    })
    .await
    .expect("place");
    assert_eq!(usage_of(s, "h1").await, Some(usage(2)));
    s.update_container("bbbb0001", &mut |r| {
        r.memory_mb = 1024;
        Some(())
    })
    .await
    .expect("resize");
    let mut two = usage(2);
    two.used.memory_mb += 512;
    assert_eq!(usage_of(s, "h1").await, Some(two));
    s.update_container("bbbb0001", &mut |r| {
        r.host_key = Some("h2".into());
        r.memory_mb = 512;
        Some(())
    })
    .await
    .expect("move");
    assert_eq!(usage_of(s, "h1").await, Some(usage(1)));
    assert_eq!(usage_of(s, "h2").await, Some(usage(1)));
    s.update_container("bbbb0001", &mut |r| {
        r.host_key = None;
        Some(())
    })
    .await
    .expect("unplace");
    assert_eq!(
        usage_of(s, "h2").await,
        None,
        "a host with nothing placed has no sums"
    );

    let untouched = s
        .update_container("aaaa0002", &mut |_| None)
        .await
        .expect("update");
    assert_eq!(untouched.map(|r| r.generation), Some(1));
    let missing = s.update_container("zzzz0000", &mut |_| Some(())).await;
    assert!(missing.expect("update").is_none());

    // Hidden (deleted, unconfirmed) records leave the owner's list but stay on their host.
    s.update_container("aaaa0001", &mut |r| {
        r.desired = DesiredState::Deleted;
        Some(())
    })
    .await
    .expect("hide");
    assert_eq!(
        ids(&s.owner_containers("alice").await.expect("l")),
        ["aaaa0002"]
    );
    assert_eq!(s.host_containers("h1").await.expect("host").len(), 1);
    assert_eq!(s.all_containers().await.expect("all").len(), 3);
    assert_eq!(
        usage_of(s, "h1").await,
        Some(usage(1)),
        "until the host confirms"
    );
}

async fn names(s: &dyn Store) {
    let named = |o: &'static str, n: &'static str| async move {
        s.container_named(o, n).await.expect("named").map(|r| r.id)
    };
    assert_eq!(
        named("alice", "n-aaaa0002").await.as_deref(),
        Some("aaaa0002")
    );
    assert_eq!(
        named("bob", "n-aaaa0002").await,
        None,
        "names are per owner"
    );
    assert_eq!(
        named("alice", "n-aaaa0001").await,
        None,
        "a hidden record frees its name"
    );
    s.update_container("aaaa0002", &mut |r| {
        r.name = "renamed".into();
        Some(())
    })
    .await
    .expect("rename");
    assert_eq!(named("alice", "n-aaaa0002").await, None);
    assert_eq!(named("alice", "renamed").await.as_deref(), Some("aaaa0002"));
}

async fn removal(s: &dyn Store) {
    s.add_event("aaaa0001", "created", "x".into())
        .await
        .expect("event");
    s.remove_container("aaaa0001").await.expect("remove");
    assert!(s.container("aaaa0001").await.expect("get").is_none());
    assert!(s.host_containers("h1").await.expect("host").is_empty());
    assert_eq!(
        usage_of(s, "h1").await,
        None,
        "removed records leave the sums"
    );
    assert!(s.events("aaaa0001").await.expect("events").is_empty());
    s.remove_container("aaaa0001")
        .await
        .expect("removing twice is harmless");
}

async fn history(s: &dyn Store) {
    for i in 0..MAX_EVENTS + 5 {
        s.add_event("bbbb0001", "status", format!("{i}"))
            .await
            .expect("event");
    }
    let ev = s.events("bbbb0001").await.expect("events");
    assert_eq!(ev.len(), MAX_EVENTS, "bounded");
    assert_eq!(ev[0].message, format!("{}", MAX_EVENTS + 4), "newest first");
    assert!(
        ev.windows(2).all(|w| w[0].seq > w[1].seq),
        "each event has its own sequence number, newest highest"
    );
}

async fn keys_cordons_enrollments(s: &dyn Store) {
    let a = s.next_id().await.expect("id");
    let b = s.next_id().await.expect("id");
    assert!(b > a && a >= 1);
    let key = |id: u64, owner: &str| KeyRecord {
        id,
        owner: owner.into(),
        name: format!("k{id}"),
        public_key: "ssh-ed25519 AAAA".into(),
        fingerprint: format!("SHA256:{id}"),
        created_at: 1,
    };
    s.put_key(key(a, "alice")).await.expect("key");
    s.put_key(key(b, "bob")).await.expect("key");
    assert_eq!(s.owner_keys("alice").await.expect("keys").len(), 1);
    assert!(
        !s.delete_key("alice", b).await.expect("delete"),
        "not alice's key"
    );
    let found = s
        .key_with_fingerprint(&format!("SHA256:{b}"))
        .await
        .expect("fp");
    assert_eq!(
        found.map(|k| k.owner),
        Some("bob".to_string()),
        "fingerprint index"
    );
    assert!(s.delete_key("bob", b).await.expect("delete"));
    assert!(s.owner_keys("bob").await.expect("keys").is_empty());
    let gone = s
        .key_with_fingerprint(&format!("SHA256:{b}"))
        .await
        .expect("fp");
    assert!(gone.is_none(), "a deleted key leaves the fingerprint index");

    s.set_cordoned("h1", true).await.expect("cordon");
    assert!(s.cordoned_hosts().await.expect("c").contains("h1"));
    s.set_cordoned("h1", false).await.expect("uncordon");
    assert!(s.cordoned_hosts().await.expect("c").is_empty());

    assert!(s.redeem_enrollment("jti-1", "h1").await.expect("redeem"));
    assert!(
        !s.redeem_enrollment("jti-1", "h2").await.expect("redeem"),
        "only once"
    );
}

/// Writes what `check_filled` expects to find after the store is reopened.
pub async fn fill(s: &dyn Store) {
    let mut placed = record("cccc0001", "carol", 1);
    placed.host_key = Some("h9".into());
    s.insert_container(placed).await.expect("insert");
    s.insert_container(record("cccc0002", "carol", 2))
        .await
        .expect("insert");
    s.set_cordoned("h9", true).await.expect("cordon");
    s.put_volume(volume("volcccc0001", "carol", "h9", 1))
        .await
        .expect("volume");
    s.flush().await.expect("flush");
}

pub async fn check_filled(s: &dyn Store) {
    assert_eq!(
        ids(&s.owner_containers("carol").await.expect("l")),
        ["cccc0002", "cccc0001"]
    );
    assert_eq!(
        ids(&s.host_containers("h9").await.expect("h")),
        ["cccc0001"]
    );
    assert_eq!(
        ids(&s.unplaced_containers().await.expect("u")),
        ["cccc0002"]
    );
    assert!(s
        .container_named("carol", "n-cccc0001")
        .await
        .expect("n")
        .is_some());
    assert!(s.cordoned_hosts().await.expect("c").contains("h9"));
    assert_eq!(
        usage_of(s, "h9").await,
        Some(usage(1)),
        "sums survive a reopen"
    );
    assert_eq!(
        volume_ids(&s.host_volumes("h9").await.expect("v")),
        ["volcccc0001"]
    );
}
