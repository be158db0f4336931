//! How the benchmarks' fake servers run: in a child process of their own (the measured process
//! keeps the other cores), telling the parent their port on the first line of stdout, and
//! exiting when the parent's end of their stdin closes (should the parent die first).

use std::future::Future;
use std::io::{Read, Write};

/// Runs `start` on one thread: it starts the fake on 127.0.0.1 and gives what keeps it
/// running and its port. Prints the port and serves until the parent goes away.
pub fn serve_for_parent<F, Fut, T>(start: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = (T, u16)>,
{
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let (_running, port) = start().await;
        let mut out = std::io::stdout();
        writeln!(out, "{port}")
            .and_then(|()| out.flush())
            .expect("print the port");
        std::future::pending::<()>().await;
    });
}
