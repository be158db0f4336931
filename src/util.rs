//! Small helpers shared by the HTTP adapters.

/// The innermost message of an error chain: reqwest's own top-level message says only "error
/// sending request", while the cause says what happened ("connection refused").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
