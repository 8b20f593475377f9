//! A small axum service measured with alloc-core, with the admin routes
//! mounted under `/admin` of its own router and its open connections
//! counted for the soak's quiescence wait:
//!
//! ```text
//! cargo run --release -p alloc-admin --features axum --example axum_service -- 127.0.0.1:3000
//! curl http://127.0.0.1:3000/hello/world
//! go tool pprof -top http://127.0.0.1:3000/admin/debug/pprof/heap
//! ```
//!
//! With `AXUM_SERVICE_LEAK=1` it keeps every greeted name in a global list
//! (the seed's module-level list of connections): a leak to find.

#![forbid(unsafe_code)]

use std::sync::Mutex;

use alloc_admin::axum::CountingListener;
use alloc_admin::{Admin, Connections};
use alloc_core::{EpochAlloc, Jemalloc};
use axum::extract::Path;
use axum::routing::get;
use axum::Router;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Every name greeted, when leaking.
static GREETED: Mutex<Vec<String>> = Mutex::new(Vec::new());

async fn hello(Path(name): Path<String>) -> String {
    let greeting = format!("hello, {name}\n");
    if std::env::var_os("AXUM_SERVICE_LEAK").is_some() {
        remember(&name);
    }
    greeting
}

/// The leak: a copy of each name, kept forever.
#[inline(never)]
fn remember(name: &str) {
    GREETED.lock().unwrap().push(name.to_string());
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let connections = Connections::new();
        let admin = Admin::new().connections(&connections).routes();
        let app = Router::new()
            .route("/hello/{name}", get(hello))
            .nest("/admin", admin.into_router());
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(CountingListener::new(listener, connections), app).await
    })
}
