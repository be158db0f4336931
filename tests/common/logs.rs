//! What the code under test logs, captured for assertions.

use std::sync::{Arc, Mutex};

/// Log lines written so far (at debug and above), as text.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

thread_local! {
    /// Where this thread's log lines go while a test captures them.
    static CAPTURE: std::cell::RefCell<Option<LogBuffer>> = const { std::cell::RefCell::new(None) };
}

/// Captures what this thread logs until the guard drops: with a current-thread runtime
/// (`#[tokio::test]`'s), every task the test spawns, and nothing of the tests beside it.
///
/// One global subscriber writes each line to the capture of the thread that logged it. A
/// subscriber set per thread (`tracing::subscriber::set_default`) would miss the events of
/// call sites another test's thread reached first: tracing caches them as uninteresting.
pub fn capture_here() -> (LogBuffer, Capturing) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::{Layer, filter};
        // Lines are only formatted on a thread that captures them, asked at each event (never
        // cached per call site: the answer depends on the thread).
        let capturing = filter::dynamic_filter_fn(|meta, _| {
            *meta.level() <= tracing::Level::DEBUG && CAPTURE.with(|c| c.borrow().is_some())
        })
        .with_callsite_filter(|_| tracing::subscriber::Interest::sometimes());
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(ThisThread)
            .with_filter(capturing);
        // Another subscriber of this test binary may have been installed: then that one logs.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
    });
    let buffer = LogBuffer::default();
    CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
    (buffer, Capturing)
}

/// Ends this thread's capture when dropped.
pub struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

/// Writes to the capture of the thread that logs, if it has one.
struct ThisThread;

impl std::io::Write for ThisThread {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(buffer) = c.borrow_mut().as_mut() {
                buffer.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThisThread {
    type Writer = ThisThread;

    fn make_writer(&'a self) -> Self::Writer {
        ThisThread
    }
}
