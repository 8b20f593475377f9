//! The source lines a report quotes: the lines around each site's line,
//! read from the file the debug information names, when it is on this
//! machine (the analysis's only reading of anything but snapshots).

use serde::Serialize;

use super::HashMap;

/// Source lines shown on each side of a site's line.
pub(crate) const SOURCE_CONTEXT: u32 = 3;
/// A source line longer than this many characters is cut (with `…`).
const SOURCE_LINE_CHARS: usize = 160;

/// The source around a site's line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Source {
    /// The file was read.
    Found {
        /// The file.
        path: String,
        /// The site's line.
        line: u32,
        /// The number of the first line of `text`.
        first: u32,
        /// Lines `first..`, each cut at 160 characters.
        text: Vec<String>,
    },
    /// The file could not be read here (not on this machine, or the line is
    /// past its end).
    Missing {
        /// The file.
        path: String,
        /// Why: the error, or that the line is past the end.
        reason: String,
    },
}

/// Reads source files once each.
#[derive(Default)]
pub(crate) struct SourceReader {
    files: HashMap<String, Result<Vec<String>, String>>,
}

impl SourceReader {
    /// The lines around `line` of `path`.
    pub(crate) fn around(&mut self, path: &str, line: u32) -> Source {
        let lines = self.files.entry(path.to_string()).or_insert_with(|| {
            std::fs::read(path)
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .lines()
                        .map(|l| cut(l.trim_end()))
                        .collect()
                })
                .map_err(|e| e.to_string())
        });
        match lines {
            Err(e) => Source::Missing {
                path: path.to_string(),
                reason: e.clone(),
            },
            Ok(lines) if line == 0 || line as usize > lines.len() => Source::Missing {
                path: path.to_string(),
                reason: format!(
                    "line {line} is past the end of the file on disk ({} lines): \
                     it is not the source that was built",
                    lines.len()
                ),
            },
            Ok(lines) => {
                let first = line.saturating_sub(SOURCE_CONTEXT).max(1);
                let last = (line + SOURCE_CONTEXT).min(lines.len() as u32);
                Source::Found {
                    path: path.to_string(),
                    line,
                    first,
                    text: lines[first as usize - 1..last as usize].to_vec(),
                }
            }
        }
    }
}

fn cut(l: &str) -> String {
    if l.chars().count() > SOURCE_LINE_CHARS {
        let mut s: String = l.chars().take(SOURCE_LINE_CHARS - 1).collect();
        s.push('…');
        s
    } else {
        l.to_string()
    }
}
