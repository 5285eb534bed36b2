//! Pages of every list: `?limit=&cursor=`. A list is ordered by a key that never changes for
//! an item (creation time and id, a host key, a key id); a cursor is the last key a page
//! held, so the next page starts after it whatever was created or deleted meanwhile: an
//! item that exists throughout is seen exactly once. Without parameters a list answers its
//! first `DEFAULT_LIMIT` items, which is every item the seeds' quotas allow.

use super::call::Reply;
use crate::error::Error;
use berth_shared::validation::FieldErrors;
use std::collections::HashMap;
use warp::http::HeaderValue;

/// Items on a page without `?limit=`.
pub const DEFAULT_LIMIT: usize = 100;
/// The most one page may hold.
pub const MAX_LIMIT: usize = 1000;

/// What a request asked for: how many, after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    limit: usize,
    after: Option<String>,
}

impl Page {
    /// `limit` (1–1000, default 100) and `cursor` (from a `next_cursor`) of the query; `422`
    /// with per-field details for anything else.
    pub fn from_query(q: &HashMap<String, String>) -> Result<Page, Error> {
        let mut errors = FieldErrors::default();
        let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                );
                0
            }
        };
        let after = match q.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match decode(c) {
                Some(key) => Some(key),
                None => {
                    errors.add("cursor", "is not a cursor this API gave out");
                    None
                }
            },
        };
        errors
            .into_result(Page { limit, after })
            .map_err(Error::Invalid)
    }

    /// The page of `items` (in any order) by `key`, ascending, and the next page's cursor.
    pub fn take<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        let mut keyed: Vec<(String, T)> = items
            .into_iter()
            .map(|t| (key(&t), t))
            .filter(|(k, _)| self.after.as_ref().is_none_or(|a| k > a))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let more = keyed.len() > self.limit;
        keyed.truncate(self.limit);
        let next = more.then(|| keyed.last().map(|(k, _)| encode(k))).flatten();
        (keyed.into_iter().map(|(_, t)| t).collect(), next)
    }
}

/// The key of a list ordered newest first: creation time descending, then id.
pub fn newest_first(created_at: u64, id: &str) -> String {
    format!("{:020}:{id}", u64::MAX - created_at)
}

/// A number's key, ascending.
pub fn ascending(n: u64) -> String {
    format!("{n:020}")
}

/// A page's answer: the body, and the next cursor in `X-Next-Cursor` too (the images list is
/// a bare array by the seeds' contract, so there it travels only in the header).
pub fn with_cursor(mut reply: Reply, next: Option<&str>) -> Reply {
    if let Some(v) = next.and_then(|n| HeaderValue::from_str(n).ok()) {
        reply.headers_mut().insert("x-next-cursor", v);
    }
    reply
}

fn encode(key: &str) -> String {
    berth_shared::ids::hex(key.as_bytes())
}

fn decode(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    // Any hex is a position in the list (keys this API gives out are UTF-8).
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(q: &[(&str, &str)]) -> Result<Page, Error> {
        Page::from_query(
            &q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn pages_walk_a_changing_list_without_duplicates_or_gaps() {
        let mut items: Vec<u64> = (0..25).collect();
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let p = page(&[("limit", "10"), ("cursor", &cursor)]).expect("page");
            let (got, next) = p.take(items.clone(), |n| ascending(*n));
            seen.extend(got);
            // Between pages: one new item after the cursor, one deleted behind it.
            items.push(100 + seen.len() as u64);
            items.retain(|n| *n != seen[0]);
            match next {
                Some(n) => cursor = n,
                None => break,
            }
        }
        let original: Vec<u64> = (0..25).collect();
        assert!(original.iter().all(|n| seen.contains(n)), "a gap: {seen:?}");
        let mut dedup = seen.clone();
        dedup.dedup();
        assert_eq!(dedup, seen, "a duplicate");
    }

    #[test]
    fn the_default_page_is_the_whole_short_list_and_bad_parameters_are_422() {
        let (got, next) = page(&[])
            .expect("page")
            .take(vec![3u64, 1, 2], |n| ascending(*n));
        assert_eq!((got, next), (vec![1, 2, 3], None));
        assert!(page(&[("cursor", "ff00")]).is_ok(), "any hex is a position");
        for q in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "x"),
            ("cursor", "zz"),
        ] {
            assert!(matches!(page(&[q]), Err(Error::Invalid(_))), "{q:?}");
        }
        assert!(newest_first(2, "a") < newest_first(1, "a"));
    }
}
