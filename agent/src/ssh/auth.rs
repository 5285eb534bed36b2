//! Who may log in where: a login names a container (its id, or its name), and the key must be
//! one chosen for that container while the container should run with `ssh_enabled`. Every
//! failure looks the same to the client, so a login never reveals whether a container exists.

use berth_shared::protocol::{ContainerSpec, DesiredState};
use russh::keys::PublicKey;

/// Whether `key` appears among the `authorized_keys` lines of `spec`.
fn key_allowed(spec: &ContainerSpec, key: &PublicKey) -> bool {
    spec.ssh_authorized_keys.iter().any(|line| {
        PublicKey::from_openssh(line.trim()).is_ok_and(|k| k.key_data() == key.key_data())
    })
}

/// The container `login` with `key` reaches, if any. An id match wins over a name match; a
/// name resolves only among the containers that take this key (one user's: the coordinator
/// lets one user only register a key), and a name two of them share opens neither, so a
/// login can never land somewhere its user did not mean.
pub fn authorize<'a>(
    specs: impl IntoIterator<Item = &'a ContainerSpec>,
    login: &str,
    key: &PublicKey,
) -> Option<String> {
    let mut by_name: Vec<&str> = Vec::new();
    for s in specs {
        let open = s.ssh_enabled && s.desired == DesiredState::Running;
        if !open || !key_allowed(s, key) {
            continue;
        }
        if s.id == login {
            return Some(s.id.clone());
        }
        if !s.name.is_empty() && s.name == login {
            by_name.push(&s.id);
        }
    }
    match by_name[..] {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHrPReh2K3b87Op3zsbjQ3dHQTq6tEZEhRtPE73V6Vkh alice@laptop";
    const BOB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK/swOgIRqhPOdEWKn+IBJnS6B99XM5i350n8MO90W8U bob";

    fn spec(id: &str, name: &str, keys: &[&str], enabled: bool) -> ContainerSpec {
        let mut s: ContainerSpec = serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "generation": 1, "desired": "running",
            "image": "img", "cpu_millis": 1000, "memory_mb": 256, "storage_gb": 1,
            "mount_paths": ["/root"]
        }))
        .expect("spec");
        s.ssh_enabled = enabled;
        s.ssh_authorized_keys = keys.iter().map(|k| k.to_string()).collect();
        s
    }

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).expect("key")
    }

    #[test]
    fn only_the_containers_keys_open_it_by_id_or_name() {
        let specs = [
            spec("aaaa1111", "web", &[ALICE], true),
            spec("bbbb2222", "web", &[BOB], true),
        ];
        assert_eq!(
            authorize(&specs, "aaaa1111", &key(ALICE)).as_deref(),
            Some("aaaa1111")
        );
        assert_eq!(authorize(&specs, "aaaa1111", &key(BOB)), None);
        // Two users both call theirs "web": the key decides which one.
        assert_eq!(
            authorize(&specs, "web", &key(BOB)).as_deref(),
            Some("bbbb2222")
        );
        assert_eq!(
            authorize(&specs, "web", &key(ALICE)).as_deref(),
            Some("aaaa1111")
        );
        assert_eq!(authorize(&specs, "nope", &key(ALICE)), None);
    }

    #[test]
    fn a_name_two_containers_of_the_key_share_opens_neither() {
        // Left from before keys were one user's: both containers take ALICE's key.
        let specs = [
            spec("aaaa1111", "web", &[ALICE], true),
            spec("bbbb2222", "web", &[ALICE, BOB], true),
        ];
        let cases = [
            ("web", ALICE, None),
            ("web", BOB, Some("bbbb2222")),
            ("aaaa1111", ALICE, Some("aaaa1111")),
        ];
        for (login, who, want) in cases {
            let got = authorize(&specs, login, &key(who));
            assert_eq!(got.as_deref(), want, "{login} with {who}");
        }
    }

    #[test]
    fn disabled_or_stopped_containers_refuse_every_key() {
        let mut stopped = spec("cccc3333", "db", &[ALICE], true);
        stopped.desired = DesiredState::Stopped;
        let specs = [spec("aaaa1111", "web", &[ALICE], false), stopped];
        assert_eq!(authorize(&specs, "aaaa1111", &key(ALICE)), None);
        assert_eq!(authorize(&specs, "cccc3333", &key(ALICE)), None);
    }
}
