//! House rules a machine can check: every Rust source file opens with a `//!` comment
//! saying why it exists, and stays under the size a reader can hold (about 800 lines).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_says_why_it_exists_and_stays_readable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut files = Vec::new();
    rust_files(root, &mut files);
    assert!(
        files.len() > 20,
        "found the workspace sources ({})",
        files.len()
    );
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        if !text.starts_with("//!") {
            problems.push(format!("{}: does not open with //!", file.display()));
        }
        let lines = text.lines().count();
        if lines > 800 {
            problems.push(format!("{}: {lines} lines (split it)", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Handlers stay thin: every mutation goes through `actors::usecases` (its transaction and
/// its follow-ups in one place), so no file of the HTTP edge reaches the store writer.
#[test]
fn http_handlers_change_nothing_but_through_the_use_cases() {
    let http = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("gateway/src/http");
    let mut files = Vec::new();
    rust_files(&http, &mut files);
    assert!(files.len() > 10, "found the handlers ({})", files.len());
    let writes = [".writer", "execute(", "execute_or_dry(", "begin_write("];
    let problems: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("readable");
            writes
                .iter()
                .filter(|needle| text.contains(*needle))
                .map(|needle| format!("{}: {needle}", file.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        problems.is_empty(),
        "writes outside the use cases:\n{}",
        problems.join("\n")
    );
}
