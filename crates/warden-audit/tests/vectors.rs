//! RFC 6962 / 9162 proof test vectors from transparency-dev/merkle (data only), kept in
//! `../shared/testdata/merkle/` beside the project. Every case must pass exactly when its
//! `wantErr` is false. A missing folder is a failure, never a skip.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use warden_audit::merkle::{verify_consistency, verify_inclusion};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: Option<String>,
    leaf_hash: Option<String>,
    proof: Option<Vec<Option<String>>>,
    desc: Option<String>,
    want_err: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: Option<String>,
    root2: Option<String>,
    proof: Option<Vec<Option<String>>>,
    desc: Option<String>,
    want_err: bool,
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/merkle")
}

/// Every `*.json` under `dir`, recursively, sorted. Panics with a clear message if `dir` is
/// missing or holds none.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    assert!(
        dir.is_dir(),
        "Merkle test vectors not found at {} — they live in shared/testdata/merkle beside the \
         project root (copy them there; this test does not skip)",
        dir.display()
    );
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.json test vectors under {}",
        dir.display()
    );
    files
}

fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Base64 (absent or null as empty). `None` if the text is not base64: such input can only
/// be rejected.
fn bytes(b64: Option<&str>) -> Option<Vec<u8>> {
    STANDARD.decode(b64.unwrap_or_default()).ok()
}

fn proof(items: Option<&Vec<Option<String>>>) -> Option<Vec<Vec<u8>>> {
    items
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| bytes(item.as_deref()))
        .collect()
}

fn check_inclusion(case: &InclusionCase) -> Result<(), String> {
    let leaf = bytes(case.leaf_hash.as_deref()).ok_or("leafHash is not base64")?;
    let root = bytes(case.root.as_deref()).ok_or("root is not base64")?;
    let proof = proof(case.proof.as_ref()).ok_or("a proof hash is not base64")?;
    verify_inclusion(&leaf, case.leaf_idx, case.tree_size, &proof, &root).map_err(|e| e.to_string())
}

fn check_consistency(case: &ConsistencyCase) -> Result<(), String> {
    let root1 = bytes(case.root1.as_deref()).ok_or("root1 is not base64")?;
    let root2 = bytes(case.root2.as_deref()).ok_or("root2 is not base64")?;
    let proof = proof(case.proof.as_ref()).ok_or("a proof hash is not base64")?;
    verify_consistency(case.size1, case.size2, &root1, &root2, &proof).map_err(|e| e.to_string())
}

/// Runs every case in `sub`; returns (cases, failures).
fn run<T: for<'de> Deserialize<'de>>(
    sub: &str,
    want_err: fn(&T) -> bool,
    desc: fn(&T) -> String,
    check: fn(&T) -> Result<(), String>,
) -> (usize, Vec<String>) {
    let files = json_files(&vectors_dir().join(sub));
    let mut failures = Vec::new();
    for path in &files {
        let case: T = load(path);
        let result = check(&case);
        if result.is_err() != want_err(&case) {
            failures.push(format!(
                "{}: {} — wantErr {}, got {result:?}",
                path.display(),
                desc(&case),
                want_err(&case)
            ));
        }
    }
    (files.len(), failures)
}

#[test]
fn inclusion_vectors() {
    let (count, failures) = run::<InclusionCase>(
        "inclusion",
        |c| c.want_err,
        |c| c.desc.clone().unwrap_or_default(),
        check_inclusion,
    );
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count >= 50, "only {count} inclusion cases found");
    eprintln!("{count} inclusion cases passed");
}

#[test]
fn consistency_vectors() {
    let (count, failures) = run::<ConsistencyCase>(
        "consistency",
        |c| c.want_err,
        |c| c.desc.clone().unwrap_or_default(),
        check_consistency,
    );
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count >= 50, "only {count} consistency cases found");
    eprintln!("{count} consistency cases passed");
}

/// The happy paths of the vectors also come out of our own proof generation, over the
/// classic eight leaves the vectors were made from.
#[test]
fn generated_proofs_match_the_vectors() {
    use warden_audit::merkle::{Hash, consistency_proof, inclusion_proof, leaf_hash};
    let leaves: Vec<Hash> = [
        &b""[..],
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    .iter()
    .map(|l| leaf_hash(l))
    .collect();
    let mut matched = 0;
    for path in json_files(&vectors_dir().join("inclusion")) {
        let case: InclusionCase = load(&path);
        if case.want_err || case.tree_size > 8 || case.desc.as_deref() != Some("happy path") {
            continue;
        }
        let want = proof(case.proof.as_ref()).unwrap();
        let got = inclusion_proof(&leaves[..], case.leaf_idx, case.tree_size).unwrap();
        assert_eq!(
            got.iter().map(|h| h.to_vec()).collect::<Vec<_>>(),
            want,
            "{}",
            path.display()
        );
        matched += 1;
    }
    for path in json_files(&vectors_dir().join("consistency")) {
        let case: ConsistencyCase = load(&path);
        if case.want_err || case.size2 > 8 || case.desc.as_deref() != Some("happy path") {
            continue;
        }
        let want = proof(case.proof.as_ref()).unwrap();
        let got = consistency_proof(&leaves[..], case.size1, case.size2).unwrap();
        assert_eq!(
            got.iter().map(|h| h.to_vec()).collect::<Vec<_>>(),
            want,
            "{}",
            path.display()
        );
        matched += 1;
    }
    assert!(matched >= 8, "only {matched} happy paths compared");
}
