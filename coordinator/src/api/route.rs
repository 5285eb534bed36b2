//! What a route is: method, path pattern, the scope it needs, its typed body and handler.
//! [`Route::new`] cannot be called without a [`Scope`], so a route cannot exist unchecked;
//! `dispatch` enforces the scope (and ownership for per-container routes) before any
//! handler runs.

use super::call::{Call, Params, Reply};
use super::error::ApiError;
use berth_shared::requests::from_value;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use warp::http::Method;

/// What a scoped token may do to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Anyone, no token (health, the OpenAPI document).
    Public,
    /// No user token: the body carries a one-time join token.
    Enroll,
    /// Any valid token, whatever it grants: the caller asking who it is (`/compute/session`).
    Caller,
    /// `compute.<uid>`: everything of the caller's (the status stream).
    User(Action),
    /// `compute.<uid>.containers`: the caller's containers as a set.
    Containers(Action),
    /// `compute.<uid>.containers.<id>`, and `<id>` must be the caller's: else `404`.
    Container(Action),
    /// `compute.<uid>.keys`.
    Keys(Action),
    /// `compute.<uid>.volumes`; a volume not the caller's is `404` (the handler's lookup is
    /// by owner).
    Volumes(Action),
    /// Operators (`compute.admin`); to anyone else the route does not exist (`404`).
    Admin,
}

impl Scope {
    /// The resource and action a token must grant, for scopes that name one.
    pub fn grant(self, uid: &str, id: &str) -> Option<(String, Action)> {
        match self {
            Scope::User(a) => Some((format!("compute.{uid}"), a)),
            Scope::Containers(a) => Some((format!("compute.{uid}.containers"), a)),
            Scope::Container(a) => Some((format!("compute.{uid}.containers.{id}"), a)),
            Scope::Keys(a) => Some((format!("compute.{uid}.keys"), a)),
            Scope::Volumes(a) => Some((format!("compute.{uid}.volumes"), a)),
            Scope::Public | Scope::Enroll | Scope::Admin | Scope::Caller => None,
        }
    }

    /// Whether a token is needed at all.
    pub fn authenticated(self) -> bool {
        !matches!(self, Scope::Public | Scope::Enroll)
    }

    /// Whether the route changes something (a read-only token must not reach it).
    pub fn writes(self) -> bool {
        match self {
            Scope::User(a)
            | Scope::Containers(a)
            | Scope::Container(a)
            | Scope::Keys(a)
            | Scope::Volumes(a) => a != Action::Read,
            Scope::Admin | Scope::Enroll => true,
            Scope::Public | Scope::Caller => false,
        }
    }
}

pub type Handler = Arc<dyn Fn(Call) -> BoxFuture<'static, Result<Reply, ApiError>> + Send + Sync>;

/// One entry of the route table.
#[derive(Clone)]
pub struct Route {
    pub method: Method,
    /// `/compute/containers/{id}/ingress/{port}`: literal segments and `{name}` parameters,
    /// as in the OpenAPI document.
    pub path: &'static str,
    pub scope: Scope,
    /// The body's type name, for routes that take one.
    pub body: Option<&'static str>,
    /// A WebSocket route: the token may also come as `?token=` on the upgrade.
    pub websocket: bool,
    /// A change of one container's record: changes of one container take turns here and
    /// `If-Match` is checked in the turn (per-container writes, unless `unversioned`).
    pub versioned: bool,
    /// The caller's container is found while its delete is under way too (`wait`).
    pub sees_deleting: bool,
    pub(super) handler: Handler,
}

impl Route {
    pub fn new(
        method: Method,
        path: &'static str,
        scope: Scope,
        h: (Option<&'static str>, Handler),
    ) -> Route {
        Route {
            method,
            path,
            scope,
            body: h.0,
            websocket: false,
            versioned: matches!(scope, Scope::Container(a) if a != Action::Read),
            sees_deleting: false,
            handler: h.1,
        }
    }

    pub fn websocket(mut self) -> Route {
        self.websocket = true;
        self.versioned = false;
        self
    }

    /// Finds the caller's container until its host has torn it down, not only until `DELETE`.
    pub fn sees_deleting(mut self) -> Route {
        self.sees_deleting = true;
        self
    }

    /// A per-container write that leaves the record as it is (a command run inside): it does
    /// not wait for other changes, and `If-Match` is checked against the record as loaded.
    pub fn unversioned(mut self) -> Route {
        self.versioned = false;
        self
    }

    /// The path's parameters if `path` matches the pattern.
    pub fn matches(&self, path: &str) -> Option<Params> {
        let mut params = Vec::new();
        let mut got = path.trim_end_matches('/').split('/');
        for want in self.path.split('/') {
            let seg = got.next()?;
            match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !seg.is_empty() => params.push((name, seg.to_string())),
                Some(_) => return None,
                None if want == seg => {}
                None => return None,
            }
        }
        got.next().is_none().then_some(params)
    }

    /// The Prometheus `route` label: the pattern with `:name` parameters.
    pub fn label(&self) -> String {
        self.path
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    Some(name) => format!(":{name}"),
                    None => s.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// A handler without a body.
pub fn plain<F, Fut>(f: F) -> (Option<&'static str>, Handler)
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
{
    (None, Arc::new(move |c| Box::pin(f(c))))
}

/// A handler of a typed JSON body `B`: non-JSON is `400`, a non-object `422` on `body`;
/// `B`'s `Input` fields carry wrong types on to `Validate`.
pub fn body<B, F, Fut>(f: F) -> (Option<&'static str>, Handler)
where
    B: DeserializeOwned + Send + 'static,
    F: Fn(Call, B) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
{
    let f = Arc::new(f);
    let h: Handler = Arc::new(move |mut c: Call| {
        let f = f.clone();
        Box::pin(async move {
            let raw = c.take_body().await?;
            let value: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| ApiError::BadBody(format!("body is not valid JSON: {e}")))?;
            let b = from_value::<B>(value).map_err(crate::error::Error::Invalid)?;
            f(c, b).await
        })
    });
    (Some(std::any::type_name::<B>()), h)
}
