//! The HTTP front end (axum): discovery, URL resolution to a resource, namespace, name
//! and subresource, verbs, fault injection and counting, then the [`crate::api`] calls
//! under the cluster lock; watches stream from [`watch`].

pub mod authz;
pub mod codec;
pub mod query;
pub mod render;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::api::{self, DeleteOpts, Deleted, ListOpts, Sub, WriteOpts};
use crate::cluster::Shared;
use crate::error::ApiError;
use crate::patch::PatchType;
use crate::resources::{self, Res};
use crate::selector::{FieldSelector, LabelSelector};

use query::Query;
use render::Format;

/// The axum router: `/sim/...` admin endpoints and the Kubernetes API.
pub fn router(shared: Arc<Shared>) -> Router {
    crate::admin::routes().fallback(dispatch).with_state(shared)
}

/// A JSON response.
pub fn json_response(code: u16, body: Vec<u8>, content_type: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A `Status` error response.
pub fn error_response(e: &ApiError) -> Response {
    json_response(
        e.code,
        serde_json::to_vec(&e.to_status()).unwrap_or_default(),
        "application/json",
    )
}

fn value_response(code: u16, v: &Value, fmt: Format) -> Response {
    json_response(
        code,
        serde_json::to_vec(v).unwrap_or_default(),
        fmt.content_type(false),
    )
}

/// Where a request points.
#[derive(Debug, Clone)]
struct Target {
    res: Res,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Static(Value),
    Resource(Target),
}

fn resolve(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return Ok(Route::Static(resources::version_info())),
        ["api"] => return Ok(Route::Static(resources::core_versions())),
        ["apis"] => return Ok(Route::Static(resources::group_list())),
        ["api", v] => {
            return resources::resource_list("", v)
                .map(Route::Static)
                .ok_or_else(ApiError::no_route);
        }
        ["apis", g] => {
            return resources::group(g)
                .map(Route::Static)
                .ok_or_else(ApiError::no_route);
        }
        ["apis", g, v] => {
            return resources::resource_list(g, v)
                .map(Route::Static)
                .ok_or_else(ApiError::no_route);
        }
        ["openapi", "v3"] => return Ok(Route::Static(resources::openapi_v3_root())),
        ["openapi", "v3", rest @ ..] => {
            return resources::openapi_v3_doc(&rest.join("/"))
                .map(Route::Static)
                .ok_or_else(ApiError::no_route);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    let find = |plural: &str| resources::lookup(group, version, plural);
    let namespaced = |plural: &str| find(plural).filter(|r| r.def().namespaced);
    let t = |res: Res, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(Target {
            res,
            ns: ns.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
        })
    };
    let route = match rest {
        ["namespaces", ns, plural] if namespaced(plural).is_some() => {
            namespaced(plural).map(|r| t(r, Some(ns), None, None))
        }
        ["namespaces", ns, plural, name] if namespaced(plural).is_some() => {
            namespaced(plural).map(|r| t(r, Some(ns), Some(name), None))
        }
        ["namespaces", ns, plural, name, sub] if namespaced(plural).is_some() => {
            namespaced(plural).map(|r| t(r, Some(ns), Some(name), Some(sub)))
        }
        [plural] => find(plural).map(|r| t(r, None, None, None)),
        [plural, name] => find(plural)
            .filter(|r| !r.def().namespaced)
            .map(|r| t(r, None, Some(name), None)),
        [plural, name, sub] => find(plural)
            .filter(|r| !r.def().namespaced)
            .map(|r| t(r, None, Some(name), Some(sub))),
        _ => None,
    };
    route.ok_or_else(ApiError::no_route)
}

fn header<'a>(h: &'a HeaderMap, k: &str) -> &'a str {
    h.get(k).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn write_opts(q: &Query, headers: &HeaderMap) -> Result<WriteOpts, ApiError> {
    let dry_run = match q.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            )));
        }
    };
    let given = q.get("fieldManager").filter(|m| !m.is_empty());
    let ua = header(headers, "user-agent");
    let manager = given.map(String::from).unwrap_or_else(|| {
        ua.split('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string()
    });
    let strict = match q.get("fieldValidation") {
        None | Some("") | Some("Ignore") | Some("Warn") => false,
        Some("Strict") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    Ok(WriteOpts {
        dry_run,
        manager,
        strict,
        force: q.flag("force"),
        manager_given: given.is_some(),
        applying: false,
    })
}

fn parse_body(bytes: &[u8], yaml: bool) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the body of the request is empty"));
    }
    if yaml {
        serde_yaml_ng::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })
    }
}

fn verb(method: &Method, t: &Target, q: &Query) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", false) if q.flag("watch") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let path = parts.uri.path();
    if path == authz::SSAR_PATH || path == authz::SSR_PATH {
        let resp = match to_bytes(body, 1 << 20).await {
            Ok(b) => authz::review(&shared, path, &parts.method, &parts.headers, &b),
            Err(_) => Err(ApiError::new(
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 1048576",
            )),
        };
        let resp = resp.unwrap_or_else(|e| error_response(&e));
        return codec::negotiate(resp, header(&parts.headers, "accept")).await;
    }
    let target = match resolve(path) {
        Ok(Route::Static(v)) => {
            if shared.auth_enabled {
                let what = authz::non_resource(&parts.method, path);
                if let Err(e) = authz::gate(&shared, &parts.headers, &what) {
                    return error_response(&e);
                }
            }
            return if parts.method == Method::GET {
                value_response(200, &v, Format::Json)
            } else {
                error_response(&ApiError::method_not_allowed())
            };
        }
        Ok(Route::Resource(t)) => t,
        Err(e) => {
            return error_response(
                &authz::authenticate(&shared, &parts.headers)
                    .err()
                    .unwrap_or(e),
            );
        }
    };
    let verb = verb(&parts.method, &target, &q);
    let plural = target.res.def().plural;
    if shared.auth_enabled {
        let what = authz::resource_attributes(&target, verb, &q);
        if let Err(e) = authz::gate(&shared, &parts.headers, &what) {
            shared.lock().faults.count(verb, plural, e.code);
            return error_response(&e);
        }
    }
    let latency = shared.lock().faults.latency(verb, plural);
    if latency > Duration::ZERO {
        tokio::time::sleep(latency).await;
    }
    let bytes = match to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(e.to_string())),
    };
    let injected = {
        let mut c = shared.lock();
        c.faults
            .error(verb, target.res.def(), target.name.as_deref().unwrap_or(""))
    };
    let resp = match injected {
        Some(e) => error_response(&e),
        None => handle(
            &shared,
            &parts.method,
            &parts.headers,
            &target,
            verb,
            &q,
            &bytes,
        ),
    };
    let resp = if verb == "watch" {
        resp
    } else {
        codec::negotiate(resp, header(&parts.headers, "accept")).await
    };
    let code = resp.status().as_u16();
    shared.lock().faults.count(verb, plural, code);
    if verb != "get" && verb != "list" && verb != "watch" {
        shared.wake.notify_one();
    }
    resp
}

fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    t: &Target,
    verb: &str,
    q: &Query,
    body: &[u8],
) -> Response {
    match handle_inner(shared, method, headers, t, verb, q, body) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn handle_inner(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    t: &Target,
    verb: &str,
    q: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    // `res` is what the client addressed; `sres` holds the objects (events.k8s.io → core).
    let res = t.res;
    let sres = res.storage();
    let def = res.def();
    let fmt = Format::from_accept(header(headers, "accept"));
    let to_core = |v: Value| {
        if res == Res::EventV1 {
            crate::eventconv::v1_to_core(&v)
        } else {
            v
        }
    };
    let ns = t.ns.clone().unwrap_or_default();
    let sub = match t.sub.as_deref() {
        None => Sub::Main,
        Some("status") if def.has_status => Sub::Status,
        Some("binding") if res == Res::Pod && method == Method::POST => {
            let v = codec::decode_body(headers, body, false)?;
            return bind(shared, &ns, t.name.as_deref().unwrap_or(""), v);
        }
        Some("log") if res == Res::Pod && method == Method::GET => {
            let c = shared.lock();
            api::get(&c, res, &ns, t.name.as_deref().unwrap_or(""))?;
            let text = "kube-sim: simulated containers write no logs\n";
            return Ok(json_response(200, text.as_bytes().to_vec(), "text/plain"));
        }
        Some(_) => return Err(ApiError::no_route()),
    };
    match verb {
        "watch" | "list" => {
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
            let mut fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), def)?;
            if res == Res::EventV1 {
                fields
                    .0
                    .iter_mut()
                    .for_each(|f| f.field = crate::eventconv::field_to_core(&f.field));
            }
            if verb == "watch" {
                let timeout = q
                    .number("timeoutSeconds")?
                    .map(|s| Duration::from_secs(s.max(0) as u64));
                let wr = watch::WatchReq {
                    res,
                    ns: t.ns.clone(),
                    labels,
                    fields,
                    rv: q.get("resourceVersion").map(String::from),
                    bookmarks: q.flag("allowWatchBookmarks"),
                    initial_events: q.flag("sendInitialEvents"),
                    timeout,
                    format: fmt,
                };
                return Ok(watch::start(shared.clone(), wr));
            }
            let limit = q.number("limit")?.unwrap_or(0).max(0) as usize;
            let cont = match q.get("continue") {
                Some(c) if !c.is_empty() => Some(query::decode_continue(c)?),
                _ => None,
            };
            let opts = ListOpts {
                labels,
                fields,
                limit,
                cont,
            };
            let (items, rv, next) = {
                let c = shared.lock();
                api::list(&c, sres, t.ns.as_deref(), &opts)
            };
            let cont = next.map(|k| query::encode_continue(rv, &k));
            Ok(json_response(
                200,
                render::list(res, &items, rv, cont, fmt),
                fmt.content_type(true),
            ))
        }
        "get" => {
            let c = shared.lock();
            let o = api::get(&c, sres, &ns, t.name.as_deref().unwrap_or(""))?;
            Ok(json_response(
                200,
                render::object_bytes(res, &o, fmt),
                fmt.content_type(false),
            ))
        }
        "create" => {
            if t.name.is_some() {
                return Err(ApiError::method_not_allowed());
            }
            let o = write_opts(q, headers)?;
            let v = to_core(codec::decode_body(headers, body, def.custom)?);
            let mut c = shared.lock();
            let out = api::create(&mut c, sres, &ns, v, &o)?;
            Ok(value_response(201, &render::object(res, &out, fmt), fmt))
        }
        "update" => {
            let o = write_opts(q, headers)?;
            let v = to_core(codec::decode_body(headers, body, def.custom)?);
            let mut c = shared.lock();
            let out = api::update(
                &mut c,
                sres,
                &ns,
                t.name.as_deref().unwrap_or(""),
                v,
                sub,
                &o,
            )?;
            Ok(value_response(200, &render::object(res, &out, fmt), fmt))
        }
        "patch" => {
            let ct = header(headers, "content-type");
            let pt = PatchType::from_content_type(ct).ok_or_else(|| {
                ApiError::unsupported_media_type(ct, crate::patch::supported(def.custom))
            })?;
            let o = write_opts(q, headers)?;
            let v = parse_body(body, pt == PatchType::Apply)?;
            let name = t.name.as_deref().unwrap_or("");
            let mut c = shared.lock();
            let existed = c.store.get(sres, &ns, name).is_some();
            let out = if res == Res::EventV1 && pt != PatchType::Apply {
                // Patch the events.k8s.io view, then store it as a core Event.
                let old = api::get(&c, sres, &ns, name)?;
                let mut view = crate::eventconv::core_to_v1(&old.value);
                match pt {
                    PatchType::Json => crate::patch::json(&mut view, &v)?,
                    PatchType::Strategic => crate::patch::strategic(&mut view, &v),
                    _ => crate::patch::merge(&mut view, &v),
                }
                api::update(
                    &mut c,
                    sres,
                    &ns,
                    name,
                    crate::eventconv::v1_to_core(&view),
                    sub,
                    &o,
                )?
            } else {
                api::patch(&mut c, sres, &ns, name, pt, v, sub, &o)?
            };
            let code = if existed { 200 } else { 201 };
            Ok(value_response(code, &render::object(res, &out, fmt), fmt))
        }
        "delete" => {
            let d = delete_opts(q, codec::decode_optional(headers, body)?)?;
            let mut c = shared.lock();
            match api::delete(&mut c, sres, &ns, t.name.as_deref().unwrap_or(""), &d)? {
                Deleted::Object(v) => Ok(value_response(200, &render::object(res, &v, fmt), fmt)),
                Deleted::Status(s) => Ok(value_response(200, &s, Format::Json)),
            }
        }
        "deletecollection" => {
            let d = delete_opts(q, codec::decode_optional(headers, body)?)?;
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
            let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), def)?;
            let mut c = shared.lock();
            let (items, rv, _) = api::list(
                &c,
                sres,
                t.ns.as_deref(),
                &ListOpts {
                    labels,
                    fields,
                    limit: 0,
                    cont: None,
                },
            );
            let mut deleted = Vec::new();
            for o in items {
                if let Ok(Deleted::Object(v)) | Ok(Deleted::Status(v)) =
                    api::delete(&mut c, sres, &o.key.0, &o.key.1, &d)
                {
                    if v.get("kind").and_then(Value::as_str) == Some("Status") {
                        deleted.push(o.value.clone());
                    } else {
                        deleted.push(v);
                    }
                }
            }
            let list = json!({"kind": def.list_kind(), "apiVersion": def.api_version(),
                "metadata": {"resourceVersion": rv.to_string()}, "items": deleted});
            Ok(value_response(200, &list, Format::Json))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn delete_opts(q: &Query, body: Option<Value>) -> Result<DeleteOpts, ApiError> {
    let mut d = DeleteOpts::default();
    if let Some(v) = body {
        d.grace = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        d.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from);
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            d.propagation = Some("Orphan".into());
        }
        d.pre_uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        d.pre_rv = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
        d.dry_run = v
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
    }
    if let Some(g) = q.number("gracePeriodSeconds")? {
        d.grace = Some(g);
    }
    if let Some(p) = q.get("propagationPolicy").filter(|p| !p.is_empty()) {
        d.propagation = Some(p.to_string());
    }
    if q.get("dryRun") == Some("All") {
        d.dry_run = true;
    }
    if let Some(p) = &d.propagation
        && !["Background", "Foreground", "Orphan"].contains(&p.as_str())
    {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            ),
        ));
    }
    Ok(d)
}

/// `POST pods/{name}/binding`.
fn bind(shared: &Arc<Shared>, ns: &str, name: &str, v: Value) -> Result<Response, ApiError> {
    let node = v
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut c = shared.lock();
    let pod = api::get(&c, Res::Pod, ns, name)?;
    if let Some(n) = pod.pod.as_ref().and_then(|f| f.node.clone()) {
        return Err(ApiError::conflict_msg(
            Res::Pod.def(),
            name,
            &format!("pod {name} is already assigned to node \"{n}\""),
        ));
    }
    crate::controllers::scheduler::bind(&mut c, &pod, &node);
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(value_response(201, &status, Format::Json))
}
