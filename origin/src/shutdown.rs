//! The shutdown signal of the binary: SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).

/// Resolves when the process is asked to stop. If a handler cannot be installed, that signal is
/// ignored rather than treated as a request to stop at once.
pub async fn signal() {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGINT");
                std::future::pending().await
            }
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
                "SIGTERM"
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&str>();

    let received = tokio::select! {
        name = interrupt => name,
        name = terminate => name,
    };
    tracing::info!(
        signal = received,
        "shutting down: draining in-flight requests"
    );
}
