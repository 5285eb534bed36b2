//! Bodies of the key routes: a user's SSH public key, and an agent's enrollment.

use super::{Check, Input, Validate, STRING};
use crate::sshkey::PublicKey;
use crate::validation::FieldErrors;
use serde::Deserialize;

/// `POST /compute/ssh-keys`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyBody {
    pub name: Input<String>,
    pub public_key: Input<String>,
}

impl Validate for KeyBody {
    /// The trimmed name and the parsed key.
    type Valid = (String, PublicKey);
    type Context<'a> = ();

    fn validate(self, _: &()) -> Result<(String, PublicKey), FieldErrors> {
        let mut c = Check::default();
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
        match (name, key) {
            (Some(n), Some(k)) if c.errors.is_empty() => Ok((n.trim().to_string(), k)),
            _ => Err(c.errors),
        }
    }
}

/// `POST /compute/hosts/enroll`: a one-time join token and the agent's own public key.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EnrollBody {
    pub token: Input<String>,
    pub public_key: Input<String>,
}

impl Validate for EnrollBody {
    /// `(token, public_key)`.
    type Valid = (String, String);
    type Context<'a> = ();

    fn validate(self, _: &()) -> Result<(String, String), FieldErrors> {
        let mut c = Check::default();
        let token = c.required("token", self.token, STRING);
        let key = c.required("public_key", self.public_key, STRING);
        c.done((token.unwrap_or_default(), key.unwrap_or_default()))
    }
}
