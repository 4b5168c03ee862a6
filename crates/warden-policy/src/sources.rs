//! Reading policy files from disk.

use std::path::{Path, PathBuf};

use warden_core::{Diagnostic, Diagnostics};

/// One policy file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    pub path: PathBuf,
    pub text: String,
}

impl PolicySource {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The file name without `.cedar`: the prefix of ids given to policies without `@id`.
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Read every `*.cedar` file of a folder (not its subfolders), sorted by file name so ids and
/// the bundle hash do not depend on directory order.
pub fn load_policy_dir(dir: &Path) -> Result<Vec<PolicySource>, Diagnostics> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostic::new(dir, 0, 0, format!("cannot read the policy folder: {e}"))
            .with_help("set `[policy] dir` in the config, or create the folder")
    })?;
    let mut paths = Vec::new();
    let mut diags = Diagnostics::default();
    for entry in entries {
        match entry {
            Ok(e) if is_policy_file(&e.path()) => paths.push(e.path()),
            Ok(_) => {}
            Err(e) => diags.push(Diagnostic::new(
                dir,
                0,
                0,
                format!("cannot list the policy folder: {e}"),
            )),
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(PolicySource { path, text }),
            Err(e) => diags.push(Diagnostic::new(
                &path,
                0,
                0,
                format!("cannot read policy file: {e}"),
            )),
        }
    }
    diags.into_result(sources)
}

fn is_policy_file(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|ext| ext == "cedar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cedar_files_are_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.cedar"), "// b").unwrap();
        std::fs::write(dir.path().join("a.cedar"), "// a").unwrap();
        std::fs::write(dir.path().join("notes.md"), "not policy").unwrap();
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        let sources = load_policy_dir(dir.path()).unwrap();
        let names: Vec<String> = sources.iter().map(PolicySource::stem).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(sources[0].text, "// a");
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let err = load_policy_dir(Path::new("/nonexistent/policies")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/policies: error: cannot read"),
            "{err}"
        );
    }
}
