//! Placeholder until the formatter lands.
use crate::alert::Alert;
pub fn headline(alert: &Alert) -> String {
    format!("{alert:?}")
}
