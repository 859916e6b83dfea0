//! Plain-text output: aligned columns and `key: value` blocks, with every string from the API
//! cleaned of control characters (a hostile job name must not drive the terminal).

use std::io::{self, Write};

use serde_json::Value;

/// Replaces control characters (newlines, escapes) with `?`.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Like [`clean`], keeping line breaks and tabs (for message bodies shown as blocks).
pub fn clean_multiline(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A field of a JSON object as display text: strings unquoted, `null`/absent as `-`.
pub fn field(v: &Value, key: &str) -> String {
    text(v.get(key).unwrap_or(&Value::Null))
}

/// A JSON value as display text.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    }
}

/// Columns aligned on the widest cell; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row (cells are cleaned).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| clean(c)).collect());
    }

    /// Writes it.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `key: value` lines, keys aligned.
pub fn block(out: &mut dyn Write, pairs: &[(&str, String)]) -> io::Result<()> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        writeln!(out, "{k:<width$}  {}", clean(v))?;
    }
    Ok(())
}

/// The footer of a paginated listing.
pub fn next_page(out: &mut dyn Write, body: &Value) -> io::Result<()> {
    if let Some(next) = body.get("next").and_then(Value::as_str) {
        writeln!(out, "(more: --cursor {})", clean(next))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_control_characters_are_cleaned() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["1".into(), "a\nb".into()]);
        t.row(vec!["1234".into(), "\u{1b}[2J".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID    NAME\n1     a?b\n1234  ?[2J\n"
        );
        assert_eq!(field(&serde_json::json!({"a": null}), "a"), "-");
        assert_eq!(field(&serde_json::json!({"a": 3}), "a"), "3");
    }
}
