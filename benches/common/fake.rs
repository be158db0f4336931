//! How the benchmarks' fake servers run: in a child process of their own, on one thread (the
//! measured process keeps the other cores), telling the parent their port on the first line of
//! stdout, and exiting when the parent's end of their stdin closes (should the parent die first).

use std::io::{Read, Write};

/// Serves `app` on 127.0.0.1 at a free port until the parent goes away.
pub fn serve_for_parent(app: axum::Router) {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let mut out = std::io::stdout();
        writeln!(out, "{port}")
            .and_then(|()| out.flush())
            .expect("print the port");
        axum::serve(listener, app).await.expect("serve");
    });
}
