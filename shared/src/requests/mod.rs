//! Request bodies as clients send them, and the one path that validates them.
//!
//! Each body is a `Deserialize` struct of [`Input`] fields: a field of the wrong type does not
//! fail the whole body, it becomes `Input::Wrong`, so [`Validate`] can answer every field's
//! messages at once (`422 {"error":"invalid","details":{field:[…]}}`). Fields a client may
//! not set are not in the structs and are ignored. Create and PATCH share the field rules of
//! [`Check`] (name, sizes); the API layer turns non-JSON into `400` before any of this.

use crate::validation::{self, FieldErrors};
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;

/// One field as sent: absent (or `null`), of the right type, or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Input<T> {
    #[default]
    Absent,
    Given(T),
    Wrong,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = integral(serde_json::Value::deserialize(d)?);
        if v.is_null() {
            return Ok(Input::Absent);
        }
        Ok(serde_json::from_value(v).map_or(Input::Wrong, Input::Given))
    }
}

/// `v` with every number that has no fraction (`8080.0`, `1e3`) as that integer: JSON has one
/// number type, and JSON Schema (so the OpenAPI document) calls `8080.0` an integer.
fn integral(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (0.0..TWO_64).contains(&f) => Value::from(f as u64),
            Some(f) if f.fract() == 0.0 && (-TWO_63..0.0).contains(&f) => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(integral).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        v => v,
    }
}

/// A parsed JSON body as `B`: it must be an object (anything else is one message on `body`).
pub fn from_value<B: DeserializeOwned>(v: serde_json::Value) -> Result<B, FieldErrors> {
    if !v.is_object() {
        let mut e = FieldErrors::default();
        e.add("body", "must be a JSON object");
        return Err(e);
    }
    // Every field is an `Input`, which cannot fail: only a malformed struct could.
    serde_json::from_value(v).map_err(|err| {
        let mut e = FieldErrors::default();
        e.add("body", err.to_string());
        e
    })
}

/// What a wrongly typed field is told.
pub const STRING: &str = "must be a string";
pub const UINT: &str = "must be a non-negative integer";
pub const BOOL: &str = "must be true or false";
pub const UINTS: &str = "must be a list of non-negative integers";
pub const STRINGS: &str = "must be a list of strings";
pub const STRING_MAP: &str = "must be an object of strings";

/// A body turned into what the handler acts on, or every field's messages.
pub trait Validate: Sized {
    type Valid;
    /// What the rules depend on (configured limits, the record being changed).
    type Context<'a>;

    /// Reads the body, adding every problem to `c`; `None` where a part could not be read.
    fn check(self, ctx: &Self::Context<'_>, c: &mut Check) -> Option<Self::Valid>;

    fn validate(self, ctx: &Self::Context<'_>) -> Result<Self::Valid, FieldErrors> {
        let mut c = Check::default();
        match self.check(ctx, &mut c) {
            Some(v) if c.errors.is_empty() => Ok(v),
            _ => {
                if c.errors.is_empty() {
                    c.errors.add("body", "is not valid");
                }
                Err(c.errors)
            }
        }
    }
}

/// A request body: a struct of [`Input`] fields that ignores fields it does not name.
macro_rules! body {
    ($($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty),* $(,)? })*) => {
        $(
            $(#[$m])*
            #[derive(Debug, Default, serde::Deserialize)]
            #[serde(default)]
            pub struct $name {
                $($(#[$fm])* pub $field: $crate::requests::Input<$ty>,)*
            }
        )*
    };
}
pub(crate) use body;

/// Collects field messages while a body is read.
#[derive(Default)]
pub struct Check {
    pub errors: FieldErrors,
}

impl Check {
    pub fn optional<T>(&mut self, field: &str, input: Input<T>, wrong: &str) -> Option<T> {
        match input {
            Input::Absent => None,
            Input::Given(v) => Some(v),
            Input::Wrong => {
                self.errors.add(field, wrong);
                None
            }
        }
    }

    pub fn required<T>(&mut self, field: &str, input: Input<T>, wrong: &str) -> Option<T> {
        if matches!(input, Input::Absent) {
            self.errors.add(field, "is required");
        }
        self.optional(field, input, wrong)
    }

    /// `value` within `lo..=hi`.
    pub fn range(&mut self, field: &str, value: Option<u64>, (lo, hi): (u64, u64)) {
        if value.is_some_and(|v| !(lo..=hi).contains(&v)) {
            self.errors
                .add(field, format!("must be between {lo} and {hi}"));
        }
    }

    /// Where a container or volume is to go: `(region, host_key)`, each optional.
    pub fn placement(
        &mut self,
        region: Input<String>,
        host_key: Input<String>,
    ) -> (Option<String>, Option<String>) {
        let region = self.optional("region", region, STRING);
        if region
            .as_ref()
            .is_some_and(|r| r.is_empty() || r.len() > 64)
        {
            self.errors.add("region", "must be 1 to 64 characters");
        }
        let host_key = self.optional("host_key", host_key, STRING);
        if host_key
            .as_deref()
            .is_some_and(|h| !crate::ids::is_host_key(h))
        {
            self.errors.add("host_key", "is not a host key");
        }
        (region, host_key)
    }

    /// A container name (create and rename).
    pub fn name(&mut self, input: Input<String>, required: bool) -> Option<String> {
        let name = if required {
            self.required("name", input, STRING)
        } else {
            self.optional("name", input, STRING)
        };
        if let Some(Err(m)) = name.as_deref().map(validation::check_name) {
            self.errors.add("name", m);
        }
        name
    }

    /// A list of mount paths (create and `PUT …/mounts`).
    pub fn mount_paths(&mut self, paths: &[String]) {
        if let Err(msgs) = validation::check_mount_paths(paths) {
            msgs.into_iter()
                .for_each(|m| self.errors.add("mount_paths", m));
        }
    }
}

mod bodies;
mod change;
mod create;
mod exec;
mod keys;
mod session;
#[cfg(test)]
mod tests;
mod upkeep;
mod volumes;

pub use bodies::*;
pub use change::{Action, Patch, PatchLimits};
pub use create::SizeLimits;
pub use exec::{Encoding, Exec, MAX_EXEC_TIMEOUT};
pub use upkeep::MAX_RETRIES;
pub use volumes::{check_paths, NewVolume, VolumeLimits, VolumePatch, MAX_CONTAINER_VOLUMES};
