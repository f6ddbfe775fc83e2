//! Table or JSON output for the admin commands.
//!
//! Times: every timestamp field (`at`, `*_at`, `*_until`) is printed as RFC 3339 UTC in tables
//! and JSON; JSON keeps the Unix seconds beside it as `<field>_unix`. Standard output closed
//! early (`provd --json audit list | head`) ends the process quietly with status 0.

use std::io::Write;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints rows as a table with `headers`, or the values as a JSON array.
    pub fn list<T: Serialize>(
        &self,
        items: &[T],
        headers: &[&str],
        row: impl Fn(&T) -> Vec<String>,
    ) {
        if self.json {
            let mut value = serde_json::to_value(items).expect("serializable");
            with_times(&mut value);
            emit(&serde_json::to_string_pretty(&value).expect("serializable"));
            return;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(headers);
        for i in items {
            t.add_row(row(i));
        }
        emit(&format!("{t}\n{} row(s)", items.len()));
    }

    /// Prints one item as a two-column table, or as a JSON object.
    pub fn one<T: Serialize>(&self, item: &T) {
        let mut value = serde_json::to_value(item).expect("serializable");
        with_times(&mut value);
        if self.json {
            emit(&serde_json::to_string_pretty(&value).expect("serializable"));
            return;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(["field", "value"]);
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                if !k.ends_with("_unix") {
                    t.add_row([k, plain(&v)]);
                }
            }
        }
        emit(&t.to_string());
    }

    pub fn message(&self, text: &str) {
        if self.json {
            emit(&serde_json::json!({ "result": text }).to_string());
        } else {
            emit(text);
        }
    }
}

/// Writes `text` and a newline to standard output. A closed pipe ends the process quietly
/// (status 0): the reader has all it wanted.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("provd: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Whether a JSON field named `key` holds a timestamp (Unix seconds).
pub fn is_time_field(key: &str) -> bool {
    key == "at" || key.ends_with("_at") || key.ends_with("_until")
}

/// Rewrites every timestamp field (see [`is_time_field`]) holding Unix seconds into RFC 3339,
/// keeping the seconds in `<field>_unix`; recurses into arrays and objects.
pub fn with_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Array(items) => items.iter_mut().for_each(with_times),
        serde_json::Value::Object(map) => {
            let mut extra = Vec::new();
            for (k, field) in map.iter_mut() {
                if is_time_field(k) {
                    if let Some(secs) = field.as_i64() {
                        *field = serde_json::Value::String(rfc3339(secs));
                        extra.push((format!("{k}_unix"), serde_json::Value::from(secs)));
                    } else if field.is_null() {
                        extra.push((format!("{k}_unix"), serde_json::Value::Null));
                    }
                } else {
                    with_times(field);
                }
            }
            map.extend(extra);
        }
        _ => {}
    }
}

pub use crate::types::rfc3339;

/// Parses RFC 3339 (`2026-11-25T10:00:00Z`, an offset `+01:00`, or a date `2026-11-25`
/// meaning midnight UTC) or plain Unix seconds into Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    let bad = || format!("{text:?} is not a time (RFC 3339, a date YYYY-MM-DD, or Unix seconds)");
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (date, rest) = text.split_at(text.len().min(10));
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return Err(bad());
    }
    let (y, m, d) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // days_from_civil
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400;
    if rest.is_empty() {
        return Ok(secs);
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    if rest.len() < 8 {
        return Err(bad());
    }
    let (clock, zone) = rest.split_at(8);
    let hms: Vec<&str> = clock.split(':').collect();
    if hms.len() != 3 {
        return Err(bad());
    }
    let (h, mi, s) = (num(hms[0])?, num(hms[1])?, num(hms[2])?);
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    secs += h * 3600 + mi * 60 + s;
    // Fractional seconds are dropped.
    let zone = match zone.strip_prefix('.') {
        Some(f) => f.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => zone,
    };
    match zone {
        "Z" | "z" => Ok(secs),
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
            let off = num(&z[1..3])? * 3600 + num(&z[4..6])? * 60;
            Ok(if z.starts_with('+') {
                secs - off
            } else {
                secs + off
            })
        }
        _ => Err(bad()),
    }
}

pub fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

/// An optional timestamp for a table cell.
pub fn opt_time(v: &Option<i64>) -> String {
    v.map(rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_604_000), "2026-11-25T10:53:20Z");
        for secs in [0, 951_782_400, 1_795_604_000, 4_102_444_799, -86_401] {
            assert_eq!(parse_time(&rfc3339(secs)).unwrap(), secs);
        }
        assert_eq!(parse_time("2026-11-25").unwrap(), 1_795_564_800);
        assert_eq!(
            parse_time("2026-11-25T11:53:20+01:00").unwrap(),
            1_795_604_000
        );
        assert_eq!(parse_time("2026-11-25T10:53:20.5Z").unwrap(), 1_795_604_000);
        assert_eq!(parse_time("1795604000").unwrap(), 1_795_604_000);
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-25T25:00:00Z",
            "2026-11-25T10:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_fields_become_rfc3339_and_keep_unix_seconds() {
        let mut v = serde_json::json!([{
            "at": 0, "expires_at": 86_400, "locked_until": null, "count": 3,
            "inner": { "created_at": 60 }
        }]);
        with_times(&mut v);
        assert_eq!(v[0]["at"], "1970-01-01T00:00:00Z");
        assert_eq!(v[0]["at_unix"], 0);
        assert_eq!(v[0]["expires_at"], "1970-01-02T00:00:00Z");
        assert_eq!(v[0]["expires_at_unix"], 86_400);
        assert!(v[0]["locked_until"].is_null() && v[0]["locked_until_unix"].is_null());
        assert_eq!(v[0]["count"], 3);
        assert_eq!(v[0]["inner"]["created_at"], "1970-01-01T00:01:00Z");
    }
}
