//! Records in sled trees as JSON: encoding that fails loudly instead of storing empty bytes,
//! and decoding that names the key of a corrupt record. Both programs keep their durable
//! state this way (the coordinator's store, the agent's state).

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("stored record {key} is corrupt: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("record {key} cannot be encoded: {source}")]
    Encode {
        key: String,
        source: serde_json::Error,
    },
    /// The tree could not be read.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
}

fn shown(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The record stored under `key`.
pub fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, RecordError> {
    serde_json::from_slice(value).map_err(|source| RecordError::Corrupt {
        key: shown(key),
        source,
    })
}

/// The bytes to store `value` under `key` as.
pub fn encode<T: Serialize>(key: &[u8], value: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(value).map_err(|source| RecordError::Encode {
        key: shown(key),
        source,
    })
}

/// The record under `key` in `tree`, if any.
pub fn get<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, RecordError> {
    match tree.get(key)? {
        Some(v) => decode(key, &v).map(Some),
        None => Ok(None),
    }
}

/// Every record of `entries` (a tree's `iter()` or `scan_prefix()`), in key order; the first
/// read error or corrupt record fails the whole list.
pub fn decode_all<T: DeserializeOwned>(
    entries: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
) -> Result<Vec<T>, RecordError> {
    let mut out = Vec::new();
    for entry in entries {
        let (key, value) = entry?;
        out.push(decode(&key, &value)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        n: u32,
    }

    #[test]
    fn records_round_trip_and_a_corrupt_one_names_its_key() {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let tree = db.open_tree("t").expect("tree");
        tree.insert("a", encode(b"a", &Rec { n: 1 }).expect("encode"))
            .expect("insert");
        tree.insert("b", encode(b"b", &Rec { n: 2 }).expect("encode"))
            .expect("insert");
        assert_eq!(get::<Rec>(&tree, b"a").expect("get"), Some(Rec { n: 1 }));
        assert_eq!(get::<Rec>(&tree, b"z").expect("get"), None);
        let all: Vec<Rec> = decode_all(tree.iter()).expect("all");
        assert_eq!(all, [Rec { n: 1 }, Rec { n: 2 }]);

        tree.insert("c", &b"{not json"[..]).expect("insert");
        match decode_all::<Rec>(tree.iter()) {
            Err(RecordError::Corrupt { key, .. }) => assert_eq!(key, "c"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn an_unencodable_value_is_an_error_not_empty_bytes() {
        // JSON object keys must be strings: a map keyed by tuples cannot be written.
        let bad = std::collections::HashMap::from([((1u8, 2u8), 3u8)]);
        assert!(matches!(
            encode(b"k", &bad),
            Err(RecordError::Encode { key, .. }) if key == "k"
        ));
    }
}
