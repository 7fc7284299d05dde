//! A problem found while loading configuration, pinned to a place in a file.
//!
//! Loading never stops at the first problem: every loader collects all of
//! its [`Diagnostic`]s so that `webdial check` can show an admin the whole
//! list at once, each as `FILE:LINE:COL: message` (the format editors and CI
//! annotators understand).

use std::fmt;
use std::path::{Path, PathBuf};

/// One load problem. `line` and `column` are 1-based; 0 means "the file as a whole".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_path_buf(), line, column, message: message.into() }
    }

    /// A problem with the file as a whole (unreadable, missing…): reported at 1:1.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic::new(file, 1, 1, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line.max(1), self.column.max(1), self.message)
    }
}
