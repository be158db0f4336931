//! Placeholder until the formatter lands.
use crate::alert::Alert;
pub fn message(alert: &Alert) -> serde_json::Value {
    serde_json::json!({ "text": format!("{alert:?}") })
}
