//! The web console's assets: static files built from `coordinator/console/` (npm + Vite),
//! served from `[console] dir` at `/console/` beside the API (`/` redirects there). The page
//! is a client of the public API only; these files are all the coordinator adds for it.
//! Every answer carries a Content-Security-Policy that allows only this origin's scripts and
//! connections, and forbids framing.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use warp::filters::BoxedFilter;
use warp::http::header::{HeaderValue, CACHE_CONTROL};
use warp::http::Uri;
use warp::{Filter, Reply};

/// `[console]`: where the built console is (`coordinator/console/dist`); unset, no console.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub dir: Option<PathBuf>,
}

impl ConsoleConfig {
    pub fn validate(&self) -> Result<(), String> {
        match &self.dir {
            Some(d) if !d.join("index.html").is_file() => Err(format!(
                "[console] dir {} has no index.html: build the console (npm ci && npm run build in coordinator/console)",
                d.display()
            )),
            _ => Ok(()),
        }
    }
}

const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'self'; object-src 'none'";

fn secured(reply: impl Reply, hashed: bool) -> warp::reply::Response {
    let mut r = reply.into_response();
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Vite names assets by their content: they never change under one name.
    let cache = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

fn to_console() -> warp::reply::Response {
    warp::redirect::see_other(Uri::from_static("/console/")).into_response()
}

/// `GET /`, `GET /console` → `/console/`; `GET /console/<file>` from `dir`. Anything else
/// (and a file that is not there) falls through to the API, which answers `404` JSON.
pub fn filter(dir: &Path) -> BoxedFilter<(warp::reply::Response,)> {
    let root = warp::get().and(warp::path::end()).map(to_console);
    let bare = warp::get()
        .and(warp::path("console"))
        .and(warp::path::end())
        .and(warp::path::full())
        .and_then(|p: warp::path::FullPath| async move {
            // `/console` without the slash: relative asset paths need it.
            if p.as_str().ends_with('/') {
                Err(warp::reject::not_found())
            } else {
                Ok(to_console())
            }
        });
    let files = warp::get()
        .and(warp::path("console"))
        .and(warp::fs::dir(dir.to_path_buf()))
        .map(|file: warp::fs::File| {
            let hashed = file
                .path()
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == "assets");
            secured(file, hashed)
        });
    root.or(bare).unify().or(files).unify().boxed()
}
