//! The README's Layout section names every source file of the crate
//! (`src/`, `actors/`): a file added without a word there fails this test.
//! Unit-test files (`tests.rs`) are not named; a `mod.rs` is named by its
//! folder (`event_loop/`). A file is named by the shortest tail of its path
//! no other file shares: `dials.rs` alone, but `swarm/config.rs` where
//! several files are `config.rs`.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The path's components from the root, a `mod.rs` standing for its
/// folder (written `folder/`).
fn components(path: &Path, root: &Path) -> Vec<String> {
    let relative = path.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod.rs") {
        parts.pop();
        let folder = parts.pop().unwrap();
        parts.push(format!("{folder}/"));
    }
    parts
}

/// The shortest tail of `parts` that no other path ends with.
fn name(parts: &[String], all: &[Vec<String>]) -> String {
    for n in 1..=parts.len() {
        let tail = &parts[parts.len() - n..];
        let shared = all
            .iter()
            .filter(|other| other.len() >= n && other[other.len() - n..] == *tail)
            .count();
        if shared == 1 {
            return tail.join("/").replace("//", "/");
        }
    }
    parts.join("/")
}

#[test]
fn the_readme_layout_names_every_source_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let layout = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a Layout section");
    let layout = layout.split("\n## ").next().unwrap();

    let mut files = Vec::new();
    for dir in ["src", "actors"] {
        sources(&root.join(dir), &mut files);
    }
    let all: Vec<Vec<String>> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|f| components(f, root))
        .collect();
    assert!(all.len() > 50, "found the sources: {}", all.len());
    let missing: Vec<String> = all
        .iter()
        .map(|parts| name(parts, &all))
        .filter(|name| !layout.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the README's Layout section does not name: {missing:?}"
    );
}
