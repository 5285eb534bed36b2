//! The body of `POST /compute/session`: the token a browser signs in with. Any string is
//! read; whether it is a token of this cluster is the authenticator's to say (`401`).

use super::{Check, SessionBody, Validate, STRING};

/// Longer than any token the coordinator issues; refused before it is verified.
const MAX_TOKEN: usize = 8 * 1024;

impl Validate for SessionBody {
    type Valid = String;
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<String> {
        let token = c.required("token", self.token, STRING)?;
        if token.is_empty() || token.len() > MAX_TOKEN {
            c.errors
                .add("token", format!("must be 1 to {MAX_TOKEN} bytes"));
            return None;
        }
        Some(token)
    }
}
