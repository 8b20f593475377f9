//! The snapshot file format on disk: reading one file, a series directory
//! (`NNNNNN.json` files, or a soak's output directory with its `series/`
//! folder), and appending to a series. The only module of this crate, with
//! [`super::atomic`], that touches the file system.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::atomic::write_atomic;
use super::{decode, encode, encode_parts, Problem, ReadError, SnapshotFile, MAX_FILE_BYTES};
use crate::{RunIdentity, Snapshot};

/// Opens `path` for reading if it is a regular file (a symbolic link is
/// followed). The open does not block (`O_NONBLOCK`: a FIFO with no writer
/// opens at once) and the type is checked on the opened descriptor
/// (`fstat`), so what is read is what was checked: a FIFO, a device, a
/// socket or a directory is [`Problem::NotAFile`].
pub fn open_regular(path: &Path) -> Result<File, Problem> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(|e| Problem::Io(e.to_string()))?;
    let meta = file.metadata().map_err(|e| Problem::Io(e.to_string()))?;
    if meta.is_file() {
        return Ok(file);
    }
    Err(Problem::NotAFile(kind_of(&meta.file_type()).to_string()))
}

/// What a file that is not a regular file is, in a few words.
fn kind_of(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The bytes of the regular file at `path` ([`open_regular`]), if it has
/// at most `limit`: a larger file is [`Problem::TooLarge`] from its size
/// alone, before any byte is read, and a file that grows past `limit`
/// while read is refused at `limit + 1` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, Problem> {
    let file = open_regular(path)?;
    let size = file
        .metadata()
        .map_err(|e| Problem::Io(e.to_string()))?
        .len();
    if size > limit {
        return Err(Problem::TooLarge(size));
    }
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Problem::Io(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(Problem::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads one snapshot file: a regular file of at most [`MAX_FILE_BYTES`]
/// ([`read_regular`]) that [`decode`] accepts.
pub fn read_snapshot_file(path: &Path) -> Result<SnapshotFile, ReadError> {
    let err = |problem| ReadError {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = read_regular(path, MAX_FILE_BYTES).map_err(err)?;
    decode(&bytes).map_err(err)
}

/// Whether `name` is a series file name: ASCII digits, then `.json`.
pub fn is_series_name(name: &str) -> bool {
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
    // By number (names past `u64` first, to be refused), then by name: one
    // number under two names (`7.json`, `000007.json`) sorts together.
    files.sort_by_cached_key(|p| (series_number(p), p.file_name().map(|n| n.to_owned())));
    if files.is_empty() {
        return Err(err(Problem::EmptySeries));
    }
    check_numbering(&files)?;
    Ok(files)
}

/// The number of a series file (`000012.json`: 12), `None` past `u64`.
fn series_number(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// Series files, in number order, must be numbered one after the other
/// (the first may be any number): a missing file is a lost snapshot, and a
/// number written twice (`7.json`, `000007.json`) two writers.
fn check_numbering(files: &[PathBuf]) -> Result<(), ReadError> {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let mut prev: Option<(u64, &Path)> = None;
    for path in files {
        let err = |msg: String| ReadError {
            path: path.clone(),
            problem: Problem::Numbering(msg),
        };
        let Some(n) = series_number(path) else {
            return Err(err("the number is too large".to_string()));
        };
        if let Some((p, before)) = prev {
            if n == p {
                return Err(err(format!("{} has the same number", name(before))));
            }
            if n != p + 1 {
                let missing = if n == p + 2 {
                    format!("{:06}.json is missing", p + 1)
                } else {
                    format!("{:06}.json to {:06}.json are missing", p + 1, n - 1)
                };
                return Err(err(format!(
                    "{missing} (the file before this one is {})",
                    name(before)
                )));
            }
        }
        prev = Some((n, path));
    }
    Ok(())
}

/// The checks of a series that no single file can fail: every file of the
/// process run of the first (equal [`RunIdentity`], or none in all), and
/// no epoch, cycle count or timestamp before the previous file's. Feed it
/// the files in order ([`SeriesCheck::next`]); [`SeriesReader`] does, and
/// so does a soak driver for the snapshots it receives.
#[derive(Debug, Default)]
pub struct SeriesCheck {
    /// The first file's name and run.
    first: Option<(String, Option<RunIdentity>)>,
    /// The previous file's epoch, cycles and timestamp.
    prev: Option<(u32, Option<u64>, u64)>,
}

impl SeriesCheck {
    /// A check of a series with no file yet.
    #[must_use]
    pub fn new() -> Self {
        SeriesCheck::default()
    }

    /// Checks `file`, the next of the series (at `path`, which the first
    /// file's name is taken from for messages), against the files before
    /// it. A file that fails is not taken as the previous one.
    pub fn next(&mut self, path: &Path, file: &SnapshotFile) -> Result<(), Problem> {
        let s = &file.snapshot;
        let run = |r: &Option<RunIdentity>| match r {
            Some(r) => r.to_string(),
            None => "no run identity (format version 3 or older)".to_string(),
        };
        match &self.first {
            Some((first, r)) if *r != s.run => {
                return Err(Problem::OtherRun(format!(
                    "this file has {}, the series' first file {first} has {}",
                    run(&s.run),
                    run(r)
                )));
            }
            Some(_) => {}
            None => {
                let name = path.file_name().unwrap_or(path.as_os_str());
                self.first = Some((name.to_string_lossy().into_owned(), s.run.clone()));
            }
        }
        if let Some((epoch, cycles, time)) = self.prev {
            if s.epoch < epoch {
                return Err(Problem::OutOfOrder(format!(
                    "epoch {} is before the previous file's epoch {epoch}",
                    s.epoch
                )));
            }
            if let (Some(c), Some(p)) = (file.cycles, cycles) {
                if c < p {
                    return Err(Problem::OutOfOrder(format!(
                        "cycles {c} is fewer than the previous file's {p}"
                    )));
                }
            }
            if s.timestamp_unix_ns < time {
                return Err(Problem::OutOfOrder(format!(
                    "timestamp {} ns is before the previous file's {time} ns (files of \
                     another run, or the clock was set back)",
                    s.timestamp_unix_ns
                )));
            }
        }
        self.prev = Some((s.epoch, file.cycles, s.timestamp_unix_ns));
        Ok(())
    }
}

/// Reads the files of a series directory one at a time, in order, with
/// the checks of [`SeriesCheck`] (one run; epochs, cycles and timestamps
/// never going backwards); a long series need not be held in memory.
/// [`read_series`] collects it.
#[derive(Debug)]
pub struct SeriesReader {
    files: std::vec::IntoIter<PathBuf>,
    total: usize,
    check: SeriesCheck,
    failed: bool,
}

impl SeriesReader {
    /// Lists the series files of `dir`: an error if there are none or
    /// their numbering has a gap.
    pub fn open(dir: &Path) -> Result<Self, ReadError> {
        let files = series_files(dir)?;
        Ok(SeriesReader {
            total: files.len(),
            files: files.into_iter(),
            check: SeriesCheck::new(),
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
            self.check.next(&path, &file).map_err(|problem| ReadError {
                path: path.clone(),
                problem,
            })?;
            Ok(file)
        });
        self.failed = result.is_err();
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
                let after = n.checked_add(1).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: no series number after {n}", dir.display()),
                    )
                })?;
                next = next.max(after);
            }
        }
        Ok(SeriesWriter {
            dir: dir.to_path_buf(),
            next,
        })
    }

    /// The path the next file will be written to.
    #[must_use]
    pub fn next_path(&self) -> PathBuf {
        self.dir.join(format!("{:06}.json", self.next))
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
        let path = self.next_path();
        write_atomic(&path, bytes)?;
        self.next += 1;
        Ok(path)
    }
}
