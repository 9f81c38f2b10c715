//! Every requirement id a comment in `host/src` cites (S3, O6, ...) is defined in
//! `docs/design.md`, so a reader who meets one can look up the promise it stands for.
//!
//! An id is a letter of a requirement family (F, M, S, R, O, D) and one or two digits, as a
//! whole word inside a comment (`//`, `///`, `//!`); code such as `IpAddr::V4` is not a
//! comment and a name such as `X9` is not a family. `docs/design.md` defines an id with a
//! list entry that starts `- **ID**`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FAMILIES: &[char] = &['F', 'M', 'S', 'R', 'O', 'D'];

/// Whole-word ids in `text`.
fn ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    for (at, ch) in text.char_indices() {
        if !FAMILIES.contains(&ch) || (at > 0 && word(bytes[at - 1])) {
            continue;
        }
        let digits = bytes[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        let end = at + 1 + digits;
        if (1..=2).contains(&digits) && !bytes.get(end).copied().is_some_and(word) {
            found.push(text[at..end].to_string());
        }
    }
    found
}

/// The comment on a line of Rust, if any: what follows the first `//` outside a string.
fn comment(line: &str) -> Option<&str> {
    let mut in_string = false;
    let mut previous = '\0';
    for (at, ch) in line.char_indices() {
        match ch {
            '"' if previous != '\\' => in_string = !in_string,
            '/' if !in_string && previous == '/' => return Some(&line[at + 1..]),
            _ => {}
        }
        previous = if previous == '\\' && ch == '\\' { '\0' } else { ch };
    }
    None
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Id -> where it is first cited (`file:line`).
fn cited() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut cited = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for id in comment(line).map(ids).unwrap_or_default() {
                let place = format!("{}:{}", file.strip_prefix(&src).unwrap().display(), n + 1);
                cited.entry(id).or_insert(place);
            }
        }
    }
    cited
}

/// Ids `docs/design.md` defines.
fn defined() -> BTreeSet<String> {
    let design = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/design.md");
    let text = std::fs::read_to_string(&design).expect("docs/design.md exists");
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("- **"))
        .filter_map(|rest| rest.split_once("**").map(|(id, _)| id.to_string()))
        .filter(|id| ids(id) == [id.clone()])
        .collect()
}

#[test]
fn every_requirement_id_cited_in_a_comment_is_defined_in_design_md() {
    let defined = defined();
    let cited = cited();
    assert!(cited.len() >= 20, "the scan found too few ids to be working: {cited:?}");
    let missing: Vec<String> = cited
        .iter()
        .filter(|(id, _)| !defined.contains(*id))
        .map(|(id, place)| format!("{id} (cited at host/src/{place})"))
        .collect();
    assert!(missing.is_empty(), "ids cited but not defined in docs/design.md: {missing:?}");
}

#[test]
fn ids_are_whole_words_in_comments_only() {
    assert_eq!(ids("claims (S3) and O6, not X9, IpAddr::V4, S3x or AS3"), ["S3", "O6"]);
    assert_eq!(ids("R12."), ["R12"]);
    assert!(ids("S123 M").is_empty());
    assert_eq!(comment(r#"let url = "http://x/S3"; // keeps S3"#), Some(" keeps S3"));
    assert_eq!(comment("//! door (O6)"), Some("! door (O6)"));
    assert_eq!(comment(r#"let s = "a // b";"#), None);
}
