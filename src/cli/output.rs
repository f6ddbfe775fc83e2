//! Table or JSON output for the admin commands.

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
            println!(
                "{}",
                serde_json::to_string_pretty(items).expect("serializable")
            );
            return;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(headers);
        for i in items {
            t.add_row(row(i));
        }
        println!("{t}");
        println!("{} row(s)", items.len());
    }

    /// Prints one item as a two-column table, or as a JSON object.
    pub fn one<T: Serialize>(&self, item: &T) {
        let value = serde_json::to_value(item).expect("serializable");
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("serializable")
            );
            return;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(["field", "value"]);
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                t.add_row([k, plain(&v)]);
            }
        }
        println!("{t}");
    }

    pub fn message(&self, text: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "result": text }));
        } else {
            println!("{text}");
        }
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
