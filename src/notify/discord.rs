//! Placeholder until the formatter lands.
use crate::alert::Alert;
pub fn message(alert: &Alert) -> serde_json::Value {
    serde_json::json!({ "content": format!("{alert:?}"), "allowed_mentions": {"parse": []} })
}
