//! One tokio runtime per test process for the servers and the HTTP/2 client. Its worker threads
//! outlive any one test, so servers started by one test never depend on that test's thread.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("e2e-io")
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("cannot start the test runtime: {error}"))
    })
}
