//! The snapshot file format on disk: reading one file, a series directory
//! (`NNNNNN.json` files, or a soak's output directory with its `series/`
//! folder), and appending to a series. The only module of this crate, with
//! [`super::atomic`], that touches the file system.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic::write_atomic;
use super::{decode, encode, encode_parts, Problem, ReadError, SnapshotFile};
use crate::Snapshot;

/// Reads one snapshot file.
pub fn read_snapshot_file(path: &Path) -> Result<SnapshotFile, ReadError> {
    let err = |problem| ReadError {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = fs::read(path).map_err(|e| err(Problem::Io(e.to_string())))?;
    decode(&bytes).map_err(err)
}

/// Whether `name` is a series file name: ASCII digits, then `.json`.
fn is_series_name(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
}

/// The series files of `dir`, in name order (which is numeric order, since
/// the writer zero-pads). Other names, including temporary files, are skipped.
/// A directory without series files whose `series/` folder has them (a
/// soak's output directory: `series/` beside `report.*`) gives those, so
/// every reader of a series also accepts a soak's output directory.
pub fn series_files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    match series_files_in(dir) {
        // A soak's output directory: its series is in `series/`.
        Err(ReadError {
            problem: Problem::EmptySeries,
            ..
        }) if dir.join(SOAK_SERIES).is_dir() => series_files_in(&dir.join(SOAK_SERIES)),
        other => other,
    }
}

/// The folder of a soak's output directory that holds its series.
pub const SOAK_SERIES: &str = "series";

fn series_files_in(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let err = |problem| ReadError {
        path: dir.to_path_buf(),
        problem,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| err(Problem::Io(e.to_string())))? {
        let entry = entry.map_err(|e| err(Problem::Io(e.to_string())))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_series_name) {
            files.push(entry.path());
        }
    }
    // Zero-padded names sort numerically; longer names (past 999999) after.
    files.sort_by(|a, b| {
        let (a, b) = (a.file_name(), b.file_name());
        a.map(|n| n.len())
            .cmp(&b.map(|n| n.len()))
            .then_with(|| a.cmp(&b))
    });
    if files.is_empty() {
        return Err(err(Problem::EmptySeries));
    }
    Ok(files)
}

/// Reads the files of a series directory one at a time, in order, checking
/// that epochs and cycles never go backwards; a long series need not be
/// held in memory. [`read_series`] collects it.
#[derive(Debug)]
pub struct SeriesReader {
    files: std::vec::IntoIter<PathBuf>,
    total: usize,
    prev: Option<(u32, Option<u64>)>,
    failed: bool,
}

impl SeriesReader {
    /// Lists the series files of `dir` (an error if there are none).
    pub fn open(dir: &Path) -> Result<Self, ReadError> {
        let files = series_files(dir)?;
        Ok(SeriesReader {
            total: files.len(),
            files: files.into_iter(),
            prev: None,
            failed: false,
        })
    }

    /// How many files the series has in all.
    #[must_use]
    pub fn total(&self) -> usize {
        self.total
    }
}

impl Iterator for SeriesReader {
    type Item = Result<SnapshotFile, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let path = self.files.next()?;
        let result = read_snapshot_file(&path).and_then(|file| {
            let order = |msg: String| ReadError {
                path: path.clone(),
                problem: Problem::OutOfOrder(msg),
            };
            if let Some((epoch, cycles)) = self.prev {
                if file.snapshot.epoch < epoch {
                    return Err(order(format!(
                        "epoch {} is before the previous file's epoch {epoch}",
                        file.snapshot.epoch
                    )));
                }
                if let (Some(c), Some(p)) = (file.cycles, cycles) {
                    if c < p {
                        return Err(order(format!(
                            "cycles {c} is fewer than the previous file's {p}"
                        )));
                    }
                }
            }
            Ok(file)
        });
        match &result {
            Ok(f) => self.prev = Some((f.snapshot.epoch, f.cycles)),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

/// Reads a whole series directory. Any bad file fails the whole read.
pub fn read_series(dir: &Path) -> Result<Vec<SnapshotFile>, ReadError> {
    SeriesReader::open(dir)?.collect()
}

/// Reads a series directory, or a single file as a series of one.
pub fn read_path(path: &Path) -> Result<Vec<SnapshotFile>, ReadError> {
    if path.is_dir() {
        read_series(path)
    } else {
        read_snapshot_file(path).map(|f| vec![f])
    }
}

/// Writes `file` to `path` atomically ([`write_atomic`]), in the current
/// format version ([`encode`]).
pub fn write_snapshot_file(path: &Path, file: &SnapshotFile) -> io::Result<()> {
    write_atomic(path, &encode(file))
}

/// Appends snapshots to a series directory as `000000.json`, `000001.json`...
#[derive(Debug)]
pub struct SeriesWriter {
    dir: PathBuf,
    next: u64,
}

impl SeriesWriter {
    /// Opens (creating if needed) a series directory; numbering continues
    /// after the highest existing file.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut next = 0;
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(n) = name
                .to_str()
                .filter(|n| is_series_name(n))
                .and_then(|n| n.trim_end_matches(".json").parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
        }
        Ok(SeriesWriter {
            dir: dir.to_path_buf(),
            next,
        })
    }

    /// Writes the next file of the series and returns its path.
    pub fn append(&mut self, snapshot: &Snapshot, cycles: Option<u64>) -> io::Result<PathBuf> {
        self.append_bytes(&encode_parts(cycles, snapshot))
    }

    /// Writes `bytes`, unchanged, as the next file of the series and
    /// returns its path. They must be a whole file that [`decode`] accepts
    /// (what an admin endpoint's `/snapshot` served, checked once by the
    /// caller); a reader of the series refuses anything else.
    ///
    /// [`decode`]: super::decode
    pub fn append_bytes(&mut self, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.dir.join(format!("{:06}.json", self.next));
        write_atomic(&path, bytes)?;
        self.next += 1;
        Ok(path)
    }
}
