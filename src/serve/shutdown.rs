//! Stopping on SIGINT or SIGTERM without cutting replies short: the queue closes (waiting
//! requests and new ones are answered 503), the batch being generated finishes, then the
//! server stops. A second signal stops it at once.

use super::queue::Queue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// How long open connections (streams being read slowly) may take once generation is done.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Resolves once `stop` has and the worker has finished; `done` is notified then too.
pub async fn drained(
    stop: impl std::future::Future<Output = ()>,
    queue: Arc<Queue>,
    worker_exited: oneshot::Receiver<()>,
    done: Arc<Notify>,
) {
    stop.await;
    queue.close();
    // An error here means the worker thread is gone already: nothing left to wait for.
    let _ = worker_exited.await;
    done.notify_one();
}

/// The command line's stop: the first SIGINT or SIGTERM; a second one exits at once.
pub async fn on_signal() {
    signal().await;
    eprintln!("shutting down: finishing the replies being generated (a second signal stops now)");
    tokio::spawn(async {
        signal().await;
        eprintln!("stopped");
        std::process::exit(130);
    });
}

async fn signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
