//! `alloc-soak`: soak any server that mounts the alloc-admin endpoint
//! (its own port, or its routes nested in the server's router) and decide
//! whether it leaks.
//!
//! A soak runs connect/use/disconnect cycles in batches; after each batch
//! it waits until the server's open connections are back to their baseline
//! (quiescence), closes an epoch and takes a snapshot; at the end it writes
//! the series and the report and gives the verdict. What a cycle does is a
//! [`client::Script`]: the demo server's protocol, bytes of any TCP
//! protocol, or one HTTP/1.1 request, each templated per cycle
//! ([`template`]: `{cycle}`, `{key}`). A cycle is one request; by default
//! each has a connection of its own, and
//! [`SoakOptions::requests_per_connection`](soak::SoakOptions::requests_per_connection)
//! (`--requests-per-conn N`) lets a connection carry `N` in a row, as a
//! keep-alive client does.
//!
//! As a library (a test soaking a service it started):
//!
//! ```no_run
//! use alloc_soak::client::Script;
//! use alloc_soak::soak::{self, SoakOptions};
//!
//! let mut o = SoakOptions::new(
//!     "127.0.0.1:3000".parse().unwrap(),
//!     "127.0.0.1:3000".parse().unwrap(), // admin routes nested at /admin
//!     "target/soak".into(),
//! );
//! o.admin_prefix = "/admin".to_string();
//! o.script = Script::Http {
//!     method: "GET".into(),
//!     path: "/hello/u{cycle}".into(),
//!     headers: Vec::new(),
//!     body: Vec::new(),
//! };
//! let outcome = soak::run(&o).expect("the soak ran");
//! assert_eq!(outcome.exit_code(0.0), 0, "{}", outcome.verdict_line());
//! ```
//!
//! The binary, `alloc-soak`, is the same as a command line
//! (`cargo install alloc-soak`; `alloc-soak --help`): it exits 0 when no
//! leak is found, 1 on a leak, 2 on an error.

pub mod admin_client;
pub mod cli;
pub mod client;
pub mod error;
pub mod fd_limit;
pub mod soak;
pub mod template;

pub use error::SoakError;
