//! Site identity: which call stacks are one call site, and its label.
//!
//! A *site* is the frame a stack is shown by ([`Stack::site`]: its user
//! frame, the innermost frame of the program's own code by the default
//! [`SiteRule`](crate::trim::SiteRule), else its innermost frame). Two
//! stacks are one site when their [`SiteKey`]s are equal: the same
//! function calling the same library function (when it called one:
//! [`Stack::library_call`]), the same file in its
//! short form ([`short_path()`], so one site for every checkout of a file;
//! relative to its workspace when the analyser knows the roots,
//! [`SiteKey::of_frame_in`]) and the same line (when the file is known). A frame known only by its
//! address is that address; a stack without frames is the overflow stack
//! (id 0) or a stack with no frames. Stacks of one site differ only
//! outside the user's frame (other callers, another process's stack ids).
//!
//! Everything that groups stacks into sites uses this one definition:
//! [`Snapshot::site_survivors`], the analyser (`alloc-report`'s site table)
//! and the leak assertions of `alloc-core` (`Survivors::by_site`). The
//! site's name is [`SiteKey::label`] ([`Stack::label`]): `file:line
//! function`, one label per key.
//!
//! ```
//! use alloc_snapshot::{Frame, Stack};
//!
//! let stack = |id, caller: &str| Stack {
//!     id,
//!     frames: vec![
//!         Frame { ip: 0x10, function: Some("app::handler".into()),
//!                 file: Some("/home/me/app/src/handler.rs".into()), line: Some(42) },
//!         Frame { ip: 0x20, function: Some(caller.into()), file: None, line: None },
//!     ],
//!     user_frame: Some(0),
//! };
//! // Different callers, one site.
//! assert_eq!(stack(1, "app::main").site_key(), stack(2, "app::worker").site_key());
//! assert_eq!(stack(1, "app::main").label(), "app/src/handler.rs:42 app::handler");
//! ```

use crate::{short_path, Frame, Snapshot, Stack, Workspaces};

/// What makes a stack's site: compare two of these to know whether two
/// stacks are one site. Borrowed from the stack, so cheaper to build and
/// hash than the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKey<'a> {
    /// A frame with at least a function or a file: what its label shows.
    Symbol {
        /// The function, if known.
        function: Option<&'a str>,
        /// The file's short form ([`short_path()`]), if known.
        file: Option<&'a str>,
        /// The line, when the file is known (the label leaves it out
        /// otherwise).
        line: Option<u32>,
        /// The library function the site frame called, when the site is
        /// the program's own code calling a dependency
        /// ([`crate::trim::library_call`]): what the library did.
        via: Option<&'a str>,
    },
    /// A frame known only by its address.
    Address(u64),
    /// A stack without frames: `true` for the overflow stack (id 0).
    NoFrames(bool),
}

impl<'a> SiteKey<'a> {
    /// The key of one frame taken as a site, its file in the short form
    /// without workspace roots ([`short_path()`]).
    #[must_use]
    pub fn of_frame(f: &'a Frame) -> Self {
        Self::with_file(f, f.file.as_deref().map(short_path))
    }

    /// The key of one frame taken as a site, its file relative to the
    /// workspace root that holds it, if one of `workspaces` does
    /// ([`Workspaces::short`]): `alloc-core/admin/src/routes.rs:10 f`
    /// rather than `admin/src/routes.rs:10 f`.
    #[must_use]
    pub fn of_frame_in(f: &'a Frame, workspaces: &Workspaces) -> Self {
        Self::with_file(f, f.file.as_deref().map(|p| workspaces.short(p)))
    }

    /// The key of `f` with `file` its short form.
    fn with_file(f: &'a Frame, file: Option<&'a str>) -> Self {
        if f.function.is_none() && f.file.is_none() {
            return SiteKey::Address(f.ip);
        }
        SiteKey::Symbol {
            function: f.function.as_deref(),
            file,
            line: f.file.as_ref().and(f.line),
            via: None,
        }
    }

    /// This key with the library call its frame made (`via`), for a
    /// stack's site ([`Stack::site_key`]).
    fn with_via(self, call: Option<&'a Frame>) -> Self {
        match self {
            SiteKey::Symbol {
                function,
                file,
                line,
                ..
            } => SiteKey::Symbol {
                function,
                file,
                line,
                via: call.and_then(|c| c.function.as_deref()),
            },
            other => other,
        }
    }

    /// The site's label: `file:line function` with the parts that are
    /// known, followed by ` -> ` and the library function the frame called
    /// when there is one (`src/db.rs:224 mini_redis::db::Db::subscribe ->
    /// tokio::sync::broadcast::channel`), the address in hex when nothing
    /// is, `[stack table full]` for
    /// the overflow stack and `[no frames]` for another stack without
    /// frames. The usual `file:line function` is built without the
    /// formatting machinery (a report labels up to hundreds of thousands
    /// of sites).
    #[must_use]
    pub fn label(&self) -> String {
        match *self {
            SiteKey::Symbol {
                function,
                file,
                line,
                via,
            } => {
                let mut s = String::with_capacity(
                    file.map_or(0, str::len)
                        + function.map_or(0, str::len)
                        + via.map_or(0, |v| v.len() + 4)
                        + 12,
                );
                if let Some(file) = file {
                    s.push_str(file);
                    if let Some(line) = line {
                        s.push(':');
                        push_decimal(&mut s, line);
                    }
                }
                if let Some(func) = function {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push_str(func);
                }
                if let Some(via) = via {
                    s.push_str(" -> ");
                    s.push_str(via);
                }
                s
            }
            SiteKey::Address(ip) => format!("{ip:#x}"),
            SiteKey::NoFrames(true) => "[stack table full]".to_string(),
            SiteKey::NoFrames(false) => "[no frames]".to_string(),
        }
    }
}

/// Appends `v` in decimal.
fn push_decimal(s: &mut String, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.extend(digits[at..].iter().map(|&d| char::from(d)));
}

impl Stack {
    /// This stack's site ([`mod@crate::site`]): equal keys, one site.
    #[must_use]
    pub fn site_key(&self) -> SiteKey<'_> {
        match self.site() {
            Some(f) => SiteKey::of_frame(f).with_via(self.library_call()),
            None => SiteKey::NoFrames(self.id == 0),
        }
    }

    /// The library function this stack's site frame called
    /// ([`crate::trim::library_call`]), when its user frame is known.
    #[must_use]
    pub fn library_call(&self) -> Option<&Frame> {
        crate::trim::library_call(&self.frames, self.user_frame? as usize)
    }

    /// This stack's site with its file relative to the workspace root that
    /// holds it, if one of `workspaces` does ([`SiteKey::of_frame_in`]).
    #[must_use]
    pub fn site_key_in<'a>(&'a self, workspaces: &Workspaces) -> SiteKey<'a> {
        match self.site() {
            Some(f) => SiteKey::of_frame_in(f, workspaces).with_via(self.library_call()),
            None => SiteKey::NoFrames(self.id == 0),
        }
    }
}

/// The sampled survivors of one call site in a snapshot
/// ([`Snapshot::site_survivors`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSurvivors {
    /// The site's label ([`SiteKey::label`]).
    pub site: String,
    /// The id of the first of the site's stacks (by id), for its frames.
    pub stack: u32,
    /// Estimated live bytes.
    pub bytes: f64,
    /// Estimated live blocks.
    pub blocks: f64,
    /// How many live sampled blocks the estimate rests on.
    pub samples: u64,
}

impl Snapshot {
    /// The sampled survivors per call site: estimated live bytes and
    /// blocks born strictly before `epoch` (with `epoch` the snapshot's
    /// own, every closed epoch), the stacks of one site
    /// ([`mod@crate::site`]) added together, most bytes first (ties by
    /// label). Entries whose stack is missing are left out.
    #[must_use]
    pub fn site_survivors(&self, epoch: u32) -> Vec<SiteSurvivors> {
        let mut keys: Vec<SiteKey<'_>> = Vec::new();
        let mut out: Vec<SiteSurvivors> = Vec::new();
        let mut cur: Option<(u32, Option<usize>)> = None;
        for e in self.sites.iter().filter(|e| e.epoch < epoch) {
            let at = match cur {
                Some((id, at)) if id == e.stack => at,
                _ => {
                    let at = self.stack(e.stack).map(|st| {
                        let key = st.site_key();
                        match keys.iter().position(|k| *k == key) {
                            Some(i) => {
                                out[i].stack = out[i].stack.min(st.id);
                                i
                            }
                            None => {
                                keys.push(key);
                                out.push(SiteSurvivors {
                                    site: key.label(),
                                    stack: st.id,
                                    bytes: 0.0,
                                    blocks: 0.0,
                                    samples: 0,
                                });
                                out.len() - 1
                            }
                        }
                    });
                    cur = Some((e.stack, at));
                    at
                }
            };
            if let Some(i) = at {
                out[i].bytes += e.bytes;
                out[i].blocks += e.blocks;
                out[i].samples += e.samples;
            }
        }
        out.sort_by(|a, b| {
            b.bytes
                .total_cmp(&a.bytes)
                .then_with(|| a.site.cmp(&b.site))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SiteLive;

    fn frame(function: Option<&str>, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            ip: 0x1234,
            function: function.map(String::from),
            file: file.map(String::from),
            line,
        }
    }

    #[test]
    fn labels_name_what_is_known() {
        let cases: [(Frame, &str); 7] = [
            (frame(Some("f"), Some("a.rs"), Some(0)), "a.rs:0 f"),
            (
                frame(Some("f"), Some("a.rs"), Some(4_294_967_295)),
                "a.rs:4294967295 f",
            ),
            (
                frame(
                    Some("f"),
                    Some("/r/.cargo/registry/src/idx/tokio-1.0.0/src/a.rs"),
                    Some(3),
                ),
                "tokio-1.0.0/src/a.rs:3 f",
            ),
            (frame(Some("f"), Some("a.rs"), None), "a.rs f"),
            (frame(None, Some("a.rs"), Some(7)), "a.rs:7"),
            (frame(Some("f"), None, Some(7)), "f"),
            (frame(None, None, None), "0x1234"),
        ];
        for (f, label) in cases {
            assert_eq!(SiteKey::of_frame(&f).label(), label);
            assert_eq!(f.label(), label);
        }
        let bare = |id| Stack {
            id,
            frames: vec![],
            user_frame: None,
        };
        assert_eq!(bare(0).label(), "[stack table full]");
        assert_eq!(bare(7).label(), "[no frames]");
        assert_ne!(bare(0).site_key(), bare(7).site_key());
        assert_eq!(bare(7).site_key(), bare(8).site_key());
    }

    #[test]
    fn one_site_for_every_checkout_and_caller() {
        let stack = |id: u32, file: &str, caller: &str, user: bool| Stack {
            id,
            frames: vec![
                frame(Some("alloc"), Some("x.rs"), Some(1)),
                frame(Some("g"), Some(file), Some(10)),
                frame(Some(caller), Some("main.rs"), Some(2)),
            ],
            user_frame: user.then_some(1),
        };
        let a = stack(1, "/work/a/app/src/b.rs", "main", true);
        let b = stack(2, "/home/u/app/src/b.rs", "other", true);
        assert_eq!(a.site_key(), b.site_key());
        assert_eq!(a.label(), "app/src/b.rs:10 g");
        // With the workspace roots known, relative to each checkout's
        // root: still one site, and a nested package keeps its path.
        let mut ws = Workspaces::default();
        ws.add("/work/a");
        ws.add("/home/u");
        assert_eq!(a.site_key_in(&ws), b.site_key_in(&ws));
        assert_eq!(a.site_key_in(&ws).label(), "app/src/b.rs:10 g");
        let nested = stack(4, "/work/a/core/app/src/b.rs", "main", true);
        assert_eq!(nested.site_key_in(&ws).label(), "core/app/src/b.rs:10 g");
        assert_eq!(nested.label(), "app/src/b.rs:10 g");
        let bare = Stack {
            id: 7,
            frames: vec![],
            user_frame: None,
        };
        assert_eq!(bare.site_key_in(&ws), SiteKey::NoFrames(false));
        // Without a user frame the innermost frame is the site.
        assert_ne!(
            a.site_key(),
            stack(3, "/work/a/app/src/b.rs", "main", false).site_key()
        );
    }

    #[test]
    fn a_site_calling_a_library_names_the_call() {
        let reg = "/h/.cargo/registry/src/idx/bytes-1.12.2/src/bytes_mut.rs";
        let stack = |id: u32, call: &str| Stack {
            id,
            frames: vec![
                frame(Some("alloc::raw_vec::RawVec<T>::allocate"), None, None),
                frame(
                    Some("bytes::bytes_mut::BytesMut::from_vec"),
                    Some(reg),
                    Some(9),
                ),
                frame(Some(call), Some(reg), Some(140)),
                frame(Some("svc::handle"), Some("/w/svc/src/main.rs"), Some(31)),
            ],
            user_frame: Some(3),
        };
        let a = stack(1, "bytes::bytes_mut::BytesMut::with_capacity");
        assert_eq!(
            a.label(),
            "svc/src/main.rs:31 svc::handle -> bytes::bytes_mut::BytesMut::with_capacity"
        );
        // Another library call on the same line: another site.
        assert_ne!(
            a.site_key(),
            stack(2, "bytes::bytes_mut::BytesMut::new").site_key()
        );
        assert_eq!(
            a.site_key(),
            stack(3, "bytes::bytes_mut::BytesMut::with_capacity").site_key()
        );
        // The frame alone has no call.
        assert_eq!(a.frames[3].label(), "svc/src/main.rs:31 svc::handle");
    }

    #[test]
    fn site_survivors_add_up_the_stacks_of_a_site() {
        let stack = |id: u32, line: u32, caller: &str| Stack {
            id,
            frames: vec![
                frame(Some("f"), Some("a.rs"), Some(line)),
                frame(Some(caller), None, None),
            ],
            user_frame: Some(0),
        };
        let entry = |stack, epoch, bytes| SiteLive {
            stack,
            epoch,
            bytes,
            blocks: bytes / 8.0,
            samples: 1,
        };
        let s = Snapshot {
            epoch: 5,
            stacks: vec![stack(1, 3, "x"), stack(2, 4, "x"), stack(3, 3, "y")],
            sites: vec![
                entry(1, 1, 8.0),
                entry(1, 5, 800.0),
                entry(2, 2, 16.0),
                entry(3, 4, 24.0),
                entry(9, 1, 1000.0),
            ],
            ..Snapshot::default()
        };
        let got = s.site_survivors(s.epoch);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            SiteSurvivors {
                site: "a.rs:3 f".into(),
                stack: 1,
                bytes: 32.0,
                blocks: 4.0,
                samples: 2,
            }
        );
        assert_eq!((got[1].site.as_str(), got[1].bytes), ("a.rs:4 f", 16.0));
    }
}
