//! The overview's GET form: `?health=unhealthy|unknown|healthy` (absent or empty: all) and
//! `?q=` (a case-insensitive substring of the name or the id). A value the form cannot send
//! (an unknown health, a search longer than 100 characters) is a 400 with the usual error
//! envelope rather than silently ignored: a bookmarked URL with a typo should say so, not show
//! the whole fleet as if it were the filtered one. Other parameters are ignored.

use super::super::error::ApiError;

/// The longest search accepted, in characters.
const MAX_QUERY_CHARS: usize = 100;

/// The health a row can be filtered by (the page's three groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum HealthFilter {
    Unhealthy,
    Unknown,
    Healthy,
}

impl HealthFilter {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What the overview shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub health: Option<HealthFilter>,
    /// The search as typed (trimmed); `None` when empty.
    pub q: Option<String>,
    /// `q` in lower case, as it is compared.
    needle: Option<String>,
}

impl Filter {
    /// From the raw query string.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "health" => {
                    filter.health = match value.trim() {
                        "" | "all" => None,
                        health => Some(health.parse().map_err(|_| {
                            ApiError::invalid_field(
                                "health",
                                "must be unhealthy, unknown or healthy (or absent for all)",
                            )
                        })?),
                    }
                }
                "q" => {
                    let q = value.trim();
                    if q.chars().count() > MAX_QUERY_CHARS {
                        return Err(ApiError::invalid_field(
                            "q",
                            format!("must be at most {MAX_QUERY_CHARS} characters"),
                        ));
                    }
                    filter.q = (!q.is_empty()).then(|| q.to_owned());
                    filter.needle = filter.q.as_deref().map(str::to_lowercase);
                }
                _ => {}
            }
        }
        Ok(filter)
    }

    /// Whether an agent of `health`, named `name`, with the id `id` is shown.
    pub fn matches(&self, health: HealthFilter, name: Option<&str>, id: &str) -> bool {
        self.health.is_none_or(|h| h == health)
            && self.needle.as_deref().is_none_or(|q| {
                id.contains(q) || name.is_some_and(|n| n.to_lowercase().contains(q))
            })
    }

    pub fn is_empty(&self) -> bool {
        self.health.is_none() && self.q.is_none()
    }
}

/// The `?before=` of the detail page's timeline: an event id.
pub fn before(query: Option<&str>) -> Result<Option<i64>, ApiError> {
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "before" {
            return value.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid_field("before", "must be an event id (a whole number)")
            });
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    #[test]
    fn absent_and_empty_values_mean_everything() {
        assert_eq!(Filter::parse(None).unwrap(), Filter::default());
        assert_eq!(
            Filter::parse(Some("health=&q=+")).unwrap(),
            Filter::default()
        );
        assert!(Filter::parse(Some("utm_source=x")).unwrap().is_empty());
    }

    #[test]
    fn health_and_search_are_read() {
        let f = Filter::parse(Some("health=unhealthy&q=Sales%20LINE")).unwrap();
        assert_eq!(f.health, Some(HealthFilter::Unhealthy));
        assert_eq!(f.q.as_deref(), Some("Sales LINE"));
        assert!(f.matches(HealthFilter::Unhealthy, Some("The sales line"), ID));
        assert!(!f.matches(HealthFilter::Healthy, Some("The sales line"), ID));
        assert!(!f.matches(HealthFilter::Unhealthy, Some("Billing"), ID));
        assert!(!f.matches(HealthFilter::Unhealthy, None, ID));
    }

    #[test]
    fn the_search_finds_ids_by_any_part_in_any_case() {
        let f = Filter::parse(Some("q=4F89-11D3")).unwrap();
        assert!(f.matches(HealthFilter::Healthy, None, ID));
        assert!(f.matches(HealthFilter::Unknown, Some("x"), ID));
        let f = Filter::parse(Some("q=ffff")).unwrap();
        assert!(!f.matches(HealthFilter::Healthy, Some("Sales"), ID));
    }

    #[test]
    fn values_the_form_cannot_send_are_refused() {
        let e = Filter::parse(Some("health=sick")).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message().starts_with("health: "), "{}", e.message());
        let long = format!("q={}", "a".repeat(101));
        assert!(
            Filter::parse(Some(&long))
                .unwrap_err()
                .message()
                .starts_with("q: ")
        );
        assert!(Filter::parse(Some(&format!("q={}", "é".repeat(100)))).is_ok());
    }

    #[test]
    fn before_is_an_event_id() {
        assert_eq!(before(None).unwrap(), None);
        assert_eq!(before(Some("before=42")).unwrap(), Some(42));
        assert!(
            before(Some("before=x"))
                .unwrap_err()
                .message()
                .starts_with("before: ")
        );
    }
}
