//! Bodies of the key routes: a user's SSH public key, and an agent's enrollment.

use super::{Check, EnrollBody, KeyBody, Validate, STRING};
use crate::sshkey::PublicKey;

impl Validate for KeyBody {
    /// The trimmed name and the parsed key.
    type Valid = (String, PublicKey);
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<(String, PublicKey)> {
        let name = c.required("name", self.name, STRING);
        if name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.len() > 64 || n.chars().any(char::is_control))
        {
            c.errors.add("name", "must be 1 to 64 printable characters");
        }
        let key = match c
            .required("public_key", self.public_key, STRING)
            .map(|k| PublicKey::parse(&k))
        {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                c.errors.add("public_key", e.to_string());
                None
            }
            None => None,
        };
        Some((name?.trim().to_string(), key?))
    }
}

impl Validate for EnrollBody {
    /// `(token, public_key)`.
    type Valid = (String, String);
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<(String, String)> {
        let token = c.required("token", self.token, STRING);
        let key = c.required("public_key", self.public_key, STRING);
        Some((token?, key?))
    }
}
