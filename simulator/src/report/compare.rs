//! Comparing two runs' JSON reports by shape: which figure and check names the earlier report
//! had that the later one lost. Values differ from run to run (timings, run ids), so only the
//! names and their nesting are compared; a refactor of the simulator must keep them all
//! (`fleetgate-sim compare-reports`, see simulator/README.md).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Every path of `report`: object keys joined by `.`, an array's elements merged under `[]`
/// (so `removals[].status` stands for the `status` of every removal), and, for arrays of
/// named checks (`checks`), each check's name as `checks[name=…]`, so a check that
/// disappears is named.
pub fn key_paths(report: &Value) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    collect(report, String::new(), &mut paths);
    paths
}

fn collect(value: &Value, path: String, paths: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                paths.insert(child.clone());
                collect(field, child, paths);
            }
        }
        Value::Array(elements) => {
            let child = format!("{path}[]");
            for element in elements {
                if let Some(name) = element.get("name").and_then(Value::as_str) {
                    if path.ends_with("checks") {
                        paths.insert(format!("{path}[name={name}]"));
                    }
                }
                collect(element, child.clone(), paths);
            }
        }
        _ => {}
    }
}

/// The paths of `before` that `after` lacks, in order.
pub fn missing_paths(before: &Value, after: &Value) -> Vec<String> {
    let after = key_paths(after);
    key_paths(before)
        .into_iter()
        .filter(|path| !after.contains(path))
        .collect()
}

/// One pair of report files and what the later one lost.
#[derive(Debug)]
pub struct Comparison {
    pub before: PathBuf,
    /// `None`: no report of that name was found after.
    pub after: Option<PathBuf>,
    pub missing: Vec<String>,
}

/// Why two reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn read_json(path: &Path) -> Result<Value, CompareError> {
    let bytes = std::fs::read(path).map_err(|source| CompareError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| CompareError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Compares two report files, or two directories file by file: every `*.json` directly in
/// `before` against the file of the same name in `after`.
pub fn compare(before: &Path, after: &Path) -> Result<Vec<Comparison>, CompareError> {
    if !before.is_dir() {
        let missing = missing_paths(&read_json(before)?, &read_json(after)?);
        return Ok(vec![Comparison {
            before: before.to_owned(),
            after: Some(after.to_owned()),
            missing,
        }]);
    }
    let entries = std::fs::read_dir(before).map_err(|source| CompareError::Io {
        path: before.to_owned(),
        source,
    })?;
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    names.sort();
    let mut comparisons = Vec::with_capacity(names.len());
    for before_file in names {
        let after_file = after.join(before_file.file_name().unwrap_or_default());
        let comparison = if after_file.exists() {
            let missing = missing_paths(&read_json(&before_file)?, &read_json(&after_file)?);
            Comparison {
                before: before_file,
                after: Some(after_file),
                missing,
            }
        } else {
            Comparison {
                before: before_file,
                after: None,
                missing: Vec::new(),
            }
        };
        comparisons.push(comparison);
    }
    Ok(comparisons)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lost_fields_and_checks_are_named_and_values_do_not_matter() {
        let before = json!({
            "run_id": "a",
            "latency": {"p50_us": 1, "p99_us": 2},
            "removals": [{"status": 204}, {"status": 204, "answered_us": 3}],
            "checks": [{"name": "no loss", "passed": true}, {"name": "no leak", "passed": true}],
        });
        let after = json!({
            "run_id": "b",
            "latency": {"p50_us": 7},
            "removals": [{"status": 500, "answered_us": null}],
            "checks": [{"name": "no loss", "passed": false}],
            "added": 1,
        });
        assert_eq!(
            missing_paths(&before, &after),
            ["checks[name=no leak]", "latency.p99_us"]
        );
        assert!(missing_paths(&before, &before).is_empty());
    }
}
