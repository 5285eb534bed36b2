//! How answers are printed: the API's JSON as is (`--output json`), or aligned tables and
//! `field  value` lists, without colour (so nothing to strip off a terminal or under NO_COLOR).

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

/// The API's JSON, pretty.
pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// An aligned table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    for r in rows {
        t.add_row(r);
    }
    // comfy-table pads each cell by one space on both sides: trim the line ends.
    for line in t.to_string().lines() {
        println!(
            "{}",
            line.trim_end().strip_prefix(' ').unwrap_or(line.trim_end())
        );
    }
}

/// `field  value` lines of an object's scalar fields (lists joined, objects as JSON).
pub fn fields(v: &Value) {
    let Some(obj) = v.as_object() else {
        return json(v);
    };
    let rows = obj.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
    table(&["field", "value"], rows);
}

/// A JSON value as a table cell: strings bare, `-` for null, lists comma-joined.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(o) if o.is_empty() => "-".into(),
        other => other.to_string(),
    }
}
