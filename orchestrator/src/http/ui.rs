//! The web console at `/ui`: static files (HTML, CSS, ES modules, an icon) compiled into the
//! binary from `orchestrator/ui/`, so the daemon serves them with nothing to install and
//! nothing loaded from elsewhere. The page signs in with an API token and reads everything
//! through the public `/v1` routes, with that token's roles and namespaces.
//!
//! Files are looked up by exact name in a table fixed at build time: no path ever reaches the
//! file system, so `..`, encoded slashes or long names simply find nothing (404). Every answer
//! carries a strict Content-Security-Policy (only this origin's scripts, styles and API; no
//! inline code, no framing), `nosniff`, and an ETag (the content's SHA-256) with `no-cache`, so
//! browsers revalidate and get `304` until the binary changes.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::state::ApiState;

/// The policy on every console answer: this origin only, no inline script or style, no
/// plugins, no framing, forms and `<base>` pinned.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    etag: HeaderValue,
}

macro_rules! assets {
    ($($path:literal => $type:expr),* $(,)?) => {
        [$((
            $path,
            $type,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)) as &[u8],
        )),*]
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the console, by its path under `/ui/`.
static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    let files = assets![
        "index.html" => HTML,
        "style.css" => CSS,
        "favicon.svg" => SVG,
        "js/app.js" => JS,
        "js/api.js" => JS,
        "js/dom.js" => JS,
        "js/format.js" => JS,
        "js/views/common.js" => JS,
        "js/views/queues.js" => JS,
        "js/views/jobs.js" => JS,
        "js/views/job.js" => JS,
        "js/views/dlq.js" => JS,
        "js/views/schedules.js" => JS,
        "js/views/cluster.js" => JS,
    ];
    files
        .into_iter()
        .map(|(path, content_type, bytes)| {
            let digest = Sha256::digest(bytes);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            let etag = HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
            (
                path,
                Asset {
                    content_type,
                    bytes,
                    etag,
                },
            )
        })
        .collect()
});

/// Adds the console's routes (`/ui`, `/ui/`, `/ui/{*path}`) to the API router.
pub fn mount(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// The file at `path`, `304` when the client's ETag matches, or `404`.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.get(path) else {
        let mut response = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file in the console\n",
        )
            .into_response();
        secure(response.headers_mut());
        return response;
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().as_bytes() == asset.etag.as_bytes())
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(asset.bytes));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(h);
    response
}

/// The security headers of every console answer.
fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_file_is_embedded_with_a_distinct_etag() {
        assert!(ASSETS.len() >= 10);
        let mut etags: Vec<&[u8]> = ASSETS.values().map(|a| a.etag.as_bytes()).collect();
        etags.sort();
        etags.dedup();
        assert_eq!(etags.len(), ASSETS.len(), "two files share an ETag");
        for (path, a) in ASSETS.iter() {
            assert!(!a.bytes.is_empty(), "{path} is empty");
        }
    }

    #[test]
    fn the_page_loads_only_module_scripts_of_its_own_and_nothing_inline() {
        let html = std::str::from_utf8(ASSETS["index.html"].bytes).unwrap_or_default();
        assert!(html.contains(r#"<script type="module" src="js/app.js"></script>"#));
        assert_eq!(html.matches("<script").count(), 1, "one script tag");
        for inline in [
            "onclick=",
            "onload=",
            "style=",
            "javascript:",
            "http://",
            "https://",
        ] {
            assert!(!html.contains(inline), "index.html has {inline}");
        }
    }

    #[test]
    fn scripts_never_write_html_from_strings() {
        for (path, a) in ASSETS.iter().filter(|(p, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(a.bytes).unwrap_or_default();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(sink), "{path} uses {sink}");
            }
        }
    }
}
