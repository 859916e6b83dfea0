//! A small HTTP/1 client for 127.0.0.1 (Prometheus' API, the daemon's `/metrics`), and
//! Prometheus' query API on top of it.

#![allow(
    dead_code,
    reason = "shared by the live test and the live_stack example, each of which uses part of it"
)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// An HTTP client.
#[derive(Clone)]
pub struct Http(Client<HttpConnector, Full<Bytes>>);

impl Http {
    /// A client.
    pub fn new() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }

    async fn send(&self, req: hyper::Request<Full<Bytes>>) -> Result<(u16, String), String> {
        let uri = req.uri().clone();
        let resp = tokio::time::timeout(Duration::from_secs(30), self.0.request(req))
            .await
            .map_err(|_| format!("{uri}: no answer within 30 s"))?
            .map_err(|e| format!("{uri}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{uri}: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// `GET url` → (status, body).
    pub async fn get(&self, url: &str) -> Result<(u16, String), String> {
        let req = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    /// `POST url` with a form body → (status, body).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = hyper::Request::post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }
}

/// One series of a query result: its labels and its values (instant: one value).
#[derive(Debug, Clone)]
pub struct Series {
    /// Labels.
    pub labels: Value,
    /// Values as Prometheus prints them (`"1.5"`, `"NaN"`, `"+Inf"`).
    pub values: Vec<String>,
}

impl Series {
    /// Whether any value is a finite number (what a Grafana panel can draw).
    pub fn has_finite(&self) -> bool {
        self.values
            .iter()
            .any(|v| v.parse::<f64>().is_ok_and(f64::is_finite))
    }
}

/// Prometheus' HTTP API at `base` (`http://127.0.0.1:PORT`).
#[derive(Clone)]
pub struct Prometheus {
    /// Client.
    pub http: Http,
    /// Base URL.
    pub base: String,
}

impl Prometheus {
    /// Calls an API endpoint with a form; `Ok(data)` when Prometheus says success, else the
    /// error it gave (a parse error for bad PromQL).
    pub async fn api(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        let (status, body) = self
            .http
            .post_form(&format!("{}{path}", self.base), form)
            .await?;
        Self::data(status, &body)
    }

    /// `GET` of an API endpoint (those that take no POST, such as `/api/v1/rules`).
    pub async fn api_get(&self, path_and_query: &str) -> Result<Value, String> {
        let (status, body) = self
            .http
            .get(&format!("{}{path_and_query}", self.base))
            .await?;
        Self::data(status, &body)
    }

    fn data(status: u16, body: &str) -> Result<Value, String> {
        let v: Value =
            serde_json::from_str(body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!(
                "HTTP {status}: {}: {}",
                v["errorType"].as_str().unwrap_or_default(),
                v["error"].as_str().unwrap_or_default()
            ))
        }
    }

    /// `query_range` over `[start, end]` (unix seconds) with a 1 s step.
    pub async fn range(&self, expr: &str, start: f64, end: f64) -> Result<Vec<Series>, String> {
        let (s, e) = (format!("{start:.3}"), format!("{end:.3}"));
        let data = self
            .api(
                "/api/v1/query_range",
                &[("query", expr), ("start", &s), ("end", &e), ("step", "1")],
            )
            .await?;
        Ok(series(&data))
    }

    /// An instant query at `time` (unix seconds).
    pub async fn instant(&self, expr: &str, time: f64) -> Result<Vec<Series>, String> {
        let t = format!("{time:.3}");
        let data = self
            .api("/api/v1/query", &[("query", expr), ("time", &t)])
            .await?;
        Ok(series(&data))
    }
}

/// Reads a `matrix`, `vector` or `scalar` result.
fn series(data: &Value) -> Vec<Series> {
    let pair_value = |p: &Value| p[1].as_str().unwrap_or_default().to_owned();
    match data["resultType"].as_str() {
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Series {
                labels: s["metric"].clone(),
                values: s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(pair_value)
                    .collect(),
            })
            .collect(),
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Series {
                labels: s["metric"].clone(),
                values: vec![pair_value(&s["value"])],
            })
            .collect(),
        Some("scalar") => vec![Series {
            labels: Value::Null,
            values: vec![pair_value(&data["result"])],
        }],
        _ => Vec::new(),
    }
}
