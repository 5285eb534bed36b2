//! Identifiers: container ids are 8 lowercase alphanumeric characters (`abc12345`).

use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub const CONTAINER_ID_LEN: usize = 8;

/// A fresh random container id.
/// Lower-case hex of `bytes` (digests, random ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_container_id() -> String {
    let mut rng = rand::rng();
    (0..CONTAINER_ID_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether `s` has the shape of a container id. Anything else can never name a container,
/// so callers answer 404 without a lookup.
pub fn is_container_id(s: &str) -> bool {
    s.len() == CONTAINER_ID_LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// Host keys name fleet hosts; they double as the DNS name in an agent's certificate,
/// so they are DNS labels: 1–63 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn is_host_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_documented_shape() {
        for _ in 0..1000 {
            let id = new_container_id();
            assert!(is_container_id(&id), "{id}");
        }
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "",
            "ABC12345",
            "abc1234",
            "abc123456",
            "abc-2345",
            "../../et",
        ] {
            assert!(!is_container_id(bad), "{bad}");
        }
    }

    #[test]
    fn host_keys_are_dns_labels() {
        assert!(is_host_key("mia-1"));
        assert!(!is_host_key("-mia"));
        assert!(!is_host_key("Mia"));
        assert!(!is_host_key("a.b"));
        assert!(!is_host_key(&"a".repeat(64)));
    }
}
