//! Shared by the axum tests: the service on a two-worker tokio runtime in a
//! thread of its own, its open connections counted, with the admin routes
//! nested under `/admin` as the README shows.

use alloc_admin::axum::CountingListener;
use alloc_admin::{Admin, Connections};
use axum::Router;
use std::net::SocketAddr;

/// Starts the service whose own routes `routes` makes, on 127.0.0.1, and
/// returns its address.
pub(crate) fn start(routes: fn() -> Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    alloc_tests::spawn_runtime(move || async move {
        let connections = Connections::new();
        let admin = Admin::new().connections(&connections).routes();
        let app = routes().nest("/admin", admin.into_router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        axum::serve(CountingListener::new(listener, connections), app)
            .await
            .unwrap();
    });
    rx.recv().unwrap()
}
