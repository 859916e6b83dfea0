//! Query strings as kube and kubectl send them (`?&watch=true&…`, a bare `?`),
//! percent-decoded, plus continue tokens.

use std::collections::HashMap;

use crate::error::ApiError;
use crate::store::Key;

/// Decoded query parameters (last value wins).
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parse a raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode(k), decode(v));
        }
        Query(map)
    }

    /// A parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }

    /// A numeric parameter; malformed → 400.
    pub fn number(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {k}: {v:?} is not an integer"))
            }),
        }
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Encode a continue token.
pub fn encode_continue(rv: u64, key: &Key) -> String {
    hex(&format!("{rv}|{}|{}", key.0, key.1))
}

/// Decode a continue token; malformed → 400.
pub fn decode_continue(s: &str) -> Result<(u64, Key), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {s:?}"));
    let text = unhex(s).ok_or_else(bad)?;
    let mut parts = text.splitn(3, '|');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rv, (ns, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_ampersand_and_escapes() {
        let q = Query::parse(Some("&watch=true&labelSelector=a%3Db%2Cc+in+%28x%29&"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("labelSelector"), Some("a=b,c in (x)"));
        assert!(Query::parse(None).get("x").is_none());
        assert!(Query::parse(Some("")).get("x").is_none());
    }

    #[test]
    fn continue_roundtrip() {
        let k = ("ns".to_string(), "p-1".to_string());
        assert_eq!(decode_continue(&encode_continue(7, &k)).unwrap(), (7, k));
        assert!(decode_continue("zz").is_err());
    }
}
