//! The server's floors point one way (docs/architecture.md): startup → http → services → pipeline →
//! manifest / auth → db, storage → config. These tests read the crate's sources and fail when a module
//! reaches a floor above its own, so the shape survives every change instead of living only in a diagram.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each floor, and the modules of the crate it must never use.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("http", &["startup"]),
    ("services", &["http", "startup"]),
    ("pipeline", &["services", "http", "startup"]),
    ("manifest", &["services", "http", "startup", "pipeline"]),
    (
        "auth",
        &["services", "http", "startup", "pipeline", "manifest"],
    ),
    (
        "db",
        &[
            "services", "http", "startup", "pipeline", "manifest", "auth", "storage",
        ],
    ),
    (
        "storage",
        &[
            "services", "http", "startup", "pipeline", "manifest", "auth", "db",
        ],
    ),
];

/// The top-level modules of the crate that `source` names through `crate::` paths, single
/// (`crate::db::Database`) or grouped (`use crate::{db, error::Error}`). Comments are skipped: a doc link
/// is not a dependency.
fn crate_modules_used(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let after = &rest[at + "crate::".len()..];
        if !preceded_by_ident {
            if let Some(group) = after.strip_prefix('{') {
                used.extend(group_heads(group));
            } else {
                used.insert(ident(after).to_owned());
            }
        }
        rest = after;
    }
    used.remove("");
    used
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first segment of each path in a `{a::b, c, d::{e, f}}` group (the text after its `{`).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut start_of_item) = (0usize, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start_of_item = true,
            c if start_of_item && !c.is_whitespace() => {
                heads.push(ident(&group[i..]).to_owned());
                start_of_item = false;
            }
            _ => {}
        }
    }
    heads
}

fn sources_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            files.extend(sources_under(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The crate's source files of a floor: its folder, or its single file.
fn floor_sources(floor: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let folder = src.join(floor);
    let files = if folder.is_dir() {
        sources_under(&folder)
    } else {
        vec![src.join(format!("{floor}.rs"))]
    };
    assert!(
        files.iter().all(|f| f.exists()) && !files.is_empty(),
        "floor {floor} has no sources"
    );
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn no_floor_uses_a_floor_above_it() {
    let mut violations = Vec::new();
    for (floor, forbidden) in FORBIDDEN {
        for file in floor_sources(floor) {
            for module in crate_modules_used(&read(&file)) {
                if forbidden.contains(&module.as_str()) {
                    violations.push(format!("{} uses crate::{module}", file.display()));
                }
            }
            if read(&file).contains("super::super::") {
                violations.push(format!(
                    "{} reaches out of its floor with super::super",
                    file.display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn config_depends_on_nothing_in_the_crate() {
    for file in floor_sources("config") {
        let used = crate_modules_used(&read(&file));
        assert!(used.is_empty(), "{} uses crate::{used:?}", file.display());
    }
}

#[test]
fn the_reader_finds_single_grouped_and_nested_paths_and_skips_comments() {
    let source = "use crate::db::Database;\n\
                  use crate::{error::Error, services::{self, Services}};\n\
                  // see crate::startup\n\
                  /// [`crate::http::routes`]\n\
                  let x = kiln_crate::thing; f(crate::pipeline::registry());\n";
    let used: Vec<String> = crate_modules_used(source).into_iter().collect();
    assert_eq!(used, ["db", "error", "pipeline", "services"]);
}

#[test]
fn the_floors_checked_are_the_ones_the_server_has() {
    // A renamed or moved floor must not silently drop out of the check.
    let services = crate_modules_used(&read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/services/mod.rs"),
    ));
    assert!(services.contains("db") && services.contains("pipeline"));
    for (floor, _) in FORBIDDEN {
        floor_sources(floor);
    }
}
