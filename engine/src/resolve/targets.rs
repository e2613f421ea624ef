//! Target sets: read once, at submission, from where the plan says: inline, a file relative
//! to the plan (`.json`, `.yaml`/`.yml`, `.csv` with a header row), or a remote source
//! (`s3://bucket/key`, `dynamodb://TABLE`) that the caller reads ([`RemoteTargets`]: the engine
//! has no AWS client). Every target is a flat object of strings with a unique `id`; a problem
//! names the target and the file with its line (CSV: row and column).

use crate::plan::{Target, TargetSet, Where};
use crate::source::{Format, LineIndex};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest target file read, in bytes.
pub const MAX_TARGET_BYTES: u64 = 64 * 1024 * 1024;
/// Most targets in one set.
pub const MAX_TARGETS: usize = 1_000_000;
/// Longest target id.
pub const MAX_ID_LEN: usize = 100;

/// What a remote source gave.
pub enum Remote {
    /// A document (an S3 object): parsed by its name's extension, else as JSON.
    Document { name: String, bytes: Vec<u8> },
    /// Rows (a DynamoDB table), fields already strings; checked as any other targets.
    Rows(Vec<BTreeMap<String, String>>),
}

/// Reads `s3://` and `dynamodb://` sources (implemented over the AWS SDK by the executors).
pub trait RemoteTargets: Send + Sync {
    fn read(&self, url: &str) -> Result<Remote, String>;
}

/// Where relative files are and who reads remote sources.
#[derive(Clone, Copy, Default)]
pub struct Sources<'a> {
    /// The plan's directory (files are relative to it); `None`: the working directory.
    pub base_dir: Option<&'a Path>,
    pub remote: Option<&'a dyn RemoteTargets>,
}

/// A resolved set: its targets in order, and where they came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub targets: Vec<Target>,
    pub source: String,
}

/// A problem with a set, said in one sentence that names the place (the file and line).
pub type SetError = String;

/// Reads and checks the set `name`.
pub fn resolve(name: &str, set: &TargetSet, sources: Sources<'_>) -> Result<Resolved, SetError> {
    let (rows, source) = match set {
        TargetSet::Inline(items) => {
            let rows = items
                .iter()
                .enumerate()
                .map(|(i, item)| flat(item.iter(), || format!("target {} of set \"{name}\"", i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            (Located::plain(rows), "inline".to_string())
        }
        TargetSet::From { from, filter } => {
            let rows = read_source(from, sources)?;
            (rows.filtered(filter), from.clone())
        }
    };
    let (mut rows, places) = (rows.rows, rows.places);
    if rows.is_empty() {
        return Err(format!("target set \"{name}\" ({source}) holds no targets"));
    }
    if rows.len() > MAX_TARGETS {
        return Err(format!(
            "target set \"{name}\" ({source}) holds {} targets; a set holds at most {MAX_TARGETS}",
            rows.len()
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter_mut().enumerate() {
        let place = places.get(i).cloned().unwrap_or_else(|| format!("target {}", i + 1));
        let Some(id) = row.get("id") else {
            return Err(format!("{place} of set \"{name}\" has no \"id\""));
        };
        if id.trim().is_empty() {
            return Err(format!("{place} of set \"{name}\" has an empty \"id\""));
        }
        if id.chars().count() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(format!(
                "{place} of set \"{name}\": the id \"{}\" must be at most {MAX_ID_LEN} printable characters",
                crate::text::printable(id)
            ));
        }
        if let Some(first) = seen.insert(id.clone(), i) {
            let first_place = places
                .get(first)
                .cloned()
                .unwrap_or_else(|| format!("target {}", first + 1));
            return Err(format!(
                "{place} of set \"{name}\" has the id \"{id}\" of {first_place} again: ids are unique in a set"
            ));
        }
    }
    Ok(Resolved { targets: rows, source })
}

/// Targets with where each came from (a line, a row), for messages.
struct Located {
    rows: Vec<Target>,
    places: Vec<String>,
}

impl Located {
    fn plain(rows: Vec<Target>) -> Located {
        let places = (1..=rows.len()).map(|i| format!("target {i}")).collect();
        Located { rows, places }
    }

    fn filtered(self, filter: &Where) -> Located {
        if filter.is_empty() {
            return self;
        }
        let (rows, places) = self
            .rows
            .into_iter()
            .zip(self.places)
            .filter(|(row, _)| matches(row, filter))
            .unzip();
        Located { rows, places }
    }
}

/// Whether `target` is selected by `filter` (every field named has one of its values).
pub fn matches(target: &Target, filter: &Where) -> bool {
    filter
        .iter()
        .all(|(field, want)| target.get(field).is_some_and(|v| want.admits(v)))
}

/// One target from an object's members: strings as they are, numbers and booleans as
/// written, anything else an error naming `what`.
fn flat<'a>(
    members: impl Iterator<Item = (&'a String, &'a Value)>,
    what: impl Fn() -> String,
) -> Result<Target, SetError> {
    let mut out = Target::new();
    for (k, v) in members {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "{}: field \"{k}\" is not a string, number or boolean (targets are flat)",
                    what()
                ));
            }
        };
        check_field_name(k, &what)?;
        out.insert(k.clone(), value);
    }
    Ok(out)
}

fn check_field_name(k: &str, what: &impl Fn() -> String) -> Result<(), SetError> {
    let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.len() <= 64
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: \"{}\" is not a field name (letters, digits, '_' and '-', starting with a letter or '_'), so ${{target.…}} could not name it",
            what(),
            crate::text::printable(k)
        ))
    }
}

fn read_source(from: &str, sources: Sources<'_>) -> Result<Located, SetError> {
    if from.starts_with("s3://") || from.starts_with("dynamodb://") {
        let Some(remote) = sources.remote else {
            return Err(format!("{from}: this command cannot read remote target sources"));
        };
        return match remote.read(from).map_err(|e| format!("{from}: {e}"))? {
            Remote::Document { name, bytes } => parse_document(&name, &bytes),
            Remote::Rows(rows) => {
                let rows = rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, row)| {
                        for k in row.keys() {
                            check_field_name(k, &|| format!("{from}: item {}", i + 1))?;
                        }
                        Ok(row)
                    })
                    .collect::<Result<Vec<_>, SetError>>()?;
                let mut located = Located::plain(rows);
                for (i, p) in located.places.iter_mut().enumerate() {
                    *p = format!("{from}: item {}", i + 1);
                }
                Ok(located)
            }
        };
    }
    if from.contains("://") {
        return Err(format!(
            "\"{from}\" is no target source: use a file path, s3://bucket/key or dynamodb://TABLE"
        ));
    }
    let path: PathBuf = match sources.base_dir {
        Some(dir) if Path::new(from).is_relative() => dir.join(from),
        _ => PathBuf::from(from),
    };
    let shown = path.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_TARGET_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_TARGET_BYTES {
        return Err(format!("{shown} is larger than {MAX_TARGET_BYTES} bytes"));
    }
    parse_document(&shown, &bytes)
}

fn parse_document(name: &str, bytes: &[u8]) -> Result<Located, SetError> {
    let lower = name.to_ascii_lowercase();
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{name} is not UTF-8 text: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if lower.ends_with(".csv") {
        return parse_csv(name, text);
    }
    let format = if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Format::Yaml
    } else {
        Format::Json
    };
    let doc = crate::source::parse(text, 0, format).map_err(|e| {
        let (line, column) = LineIndex::new(text).line_col(text, e.span.start);
        format!("{name}:{line}:{column}: {}", e.message)
    })?;
    let lines = LineIndex::new(text);
    let at = |pointer: &str| {
        let span = doc.map.locate(&doc.value, pointer);
        let (line, column) = lines.line_col(text, span.start);
        format!("{name}:{line}:{column}")
    };
    let Some(items) = doc.value.as_array() else {
        return Err(format!("{}: a target file holds a list of targets", at("")));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut places = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let place = format!("{}: target {}", at(&format!("/{i}")), i + 1);
        let Some(object) = item.as_object() else {
            return Err(format!("{place} is not an object"));
        };
        rows.push(flat(object.iter(), || place.clone())?);
        places.push(place);
    }
    Ok(Located { rows, places })
}

/// A CSV file with a header row: quotes, a byte-order mark and CRLF line ends as spreadsheets
/// write them. Every row has every column; an empty cell is an empty string.
fn parse_csv(name: &str, text: &str) -> Result<Located, SetError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("{name}: {}", csv_error(&e)))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect::<Vec<_>>();
    for (c, h) in headers.iter().enumerate() {
        check_field_name(h, &|| format!("{name}: row 1, column {}", c + 1))?;
    }
    if let Some(c) = (0..headers.len()).find(|&c| headers[..c].contains(&headers[c])) {
        return Err(format!(
            "{name}: row 1, column {}: the column \"{}\" is named twice",
            c + 1,
            headers[c]
        ));
    }
    let mut rows = Vec::new();
    let mut places = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("{name}: {}", csv_error(&e)))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue; // a blank line, as spreadsheets leave at the end
        }
        let row: Target = headers.iter().cloned().zip(record.iter().map(str::to_string)).collect();
        rows.push(row);
        places.push(format!("{name}: row {line}"));
    }
    Ok(Located { rows, places })
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => format!(
            "row {}: {len} columns where the header has {expected_len}",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        csv::ErrorKind::Utf8 { pos, err } => format!(
            "row {}, column {}: not UTF-8",
            pos.as_ref().map_or(0, |p| p.line()),
            err.field() + 1
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::OneOrMany;

    fn from_file(name: &str, text: &str) -> Result<Resolved, SetError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        let set = TargetSet::From {
            from: name.into(),
            filter: Where::new(),
        };
        resolve(
            "tenants",
            &set,
            Sources {
                base_dir: Some(dir.path()),
                remote: None,
            },
        )
        .map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
    }

    fn ids(r: &Resolved) -> Vec<&str> {
        r.targets.iter().map(|t| t["id"].as_str()).collect()
    }

    #[test]
    fn csv_with_quotes_bom_and_crlf() {
        let r = from_file(
            "t.csv",
            "\u{feff}id,region,name\r\nt-1,eu-west-1,\"Acme, Inc.\"\r\nt-2,us-east-1,\"say \"\"hi\"\"\"\r\n\r\n",
        )
        .unwrap();
        assert_eq!(ids(&r), ["t-1", "t-2"]);
        assert_eq!(r.targets[0]["name"], "Acme, Inc.");
        assert_eq!(r.targets[1]["name"], "say \"hi\"");
        assert_eq!(r.targets[0]["region"], "eu-west-1");
        assert_eq!(r.source, "t.csv");
    }

    #[test]
    fn csv_problems_name_row_and_column() {
        let e = from_file("t.csv", "id,region\nt-1,eu-west-1\nt-2\n").unwrap_err();
        assert_eq!(e, "DIR/t.csv: row 3: 1 columns where the header has 2");
        let e = from_file("t.csv", "id,region\nt-1,a\nt-1,b\n").unwrap_err();
        assert!(
            e.contains("row 3 of set \"tenants\" has the id \"t-1\" of DIR/t.csv: row 2 again"),
            "{e}"
        );
        let e = from_file("t.csv", "id,Account ID\nt-1,a\n").unwrap_err();
        assert!(e.contains("row 1, column 2") && e.contains("not a field name"), "{e}");
        let e = from_file("t.csv", "region\neu-west-1\n").unwrap_err();
        assert!(e.contains("row 2 of set \"tenants\" has no \"id\""), "{e}");
        let e = from_file("t.csv", "id,region\n").unwrap_err();
        assert!(e.contains("holds no targets"), "{e}");
    }

    #[test]
    fn json_and_yaml_files_with_lines() {
        let r = from_file("t.json", r#"[{"id": "a", "n": 1, "on": true}, {"id": "b"}]"#).unwrap();
        assert_eq!(ids(&r), ["a", "b"]);
        assert_eq!((r.targets[0]["n"].as_str(), r.targets[0]["on"].as_str()), ("1", "true"));
        let r = from_file("t.yaml", "- id: a\n  region: eu-west-1\n- id: b\n").unwrap();
        assert_eq!(ids(&r), ["a", "b"]);
        let e = from_file("t.yaml", "- id: a\n- id: b\n  tags: [x]\n").unwrap_err();
        assert!(
            e.starts_with("DIR/t.yaml:2:") && e.contains("target 2: field \"tags\""),
            "{e}"
        );
        let e = from_file("t.json", "[{\"id\": \"a\"},\n {\"id\": \"a\"}]").unwrap_err();
        assert!(e.contains("DIR/t.json:2:2: target 2") && e.contains("again"), "{e}");
        let e = from_file("t.json", "{\"id\": \"a\"}").unwrap_err();
        assert!(e.contains("holds a list of targets"), "{e}");
        let e = from_file("empty.json", "[]").map(|_| ()).unwrap_err();
        assert!(e.contains("holds no targets"), "{e}");
    }

    #[test]
    fn where_selects_by_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "id,tier\na,pool\nb,silo\nc,pool\n").unwrap();
        let set = TargetSet::From {
            from: "t.csv".into(),
            filter: [("tier".to_string(), OneOrMany::One("pool".into()))].into(),
        };
        let sources = Sources {
            base_dir: Some(dir.path()),
            remote: None,
        };
        assert_eq!(ids(&resolve("s", &set, sources).unwrap()), ["a", "c"]);
    }

    #[test]
    fn inline_sets_are_checked_like_files() {
        let set: TargetSet = serde_json::from_value(serde_json::json!([{"id": "x"}, {"id": ""}])).unwrap();
        let e = resolve("regions", &set, Sources::default()).unwrap_err();
        assert_eq!(e, "target 2 of set \"regions\" has an empty \"id\"");
        let set: TargetSet = serde_json::from_value(serde_json::json!({"from": "http://x/y"})).unwrap();
        assert!(
            resolve("r", &set, Sources::default())
                .unwrap_err()
                .contains("no target source")
        );
        let set: TargetSet = serde_json::from_value(serde_json::json!({"from": "s3://b/k.csv"})).unwrap();
        assert!(
            resolve("r", &set, Sources::default())
                .unwrap_err()
                .contains("cannot read remote")
        );
    }
}
