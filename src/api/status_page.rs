//! `GET /`: a minimal server-rendered status page of the watched agents, behind HTTP basic auth
//! (any user name, the admin token as password). Every piece of text is HTML-escaped: names come
//! from operators and statuses from the Ravan API.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};

use super::ApiState;
use super::auth::check_basic;
use super::error::{ApiError, ErrorBody};
use crate::store::AgentRecord;

/// The status page.
#[utoipa::path(
    get,
    path = "/",
    tag = "status page",
    security(("status_page" = [])),
    responses(
        (status = 200, description = "The status page", body = String, content_type = "text/html"),
        (status = 401, description = "Sign in: any user name, the admin token as password",
            body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn status_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_basic(&headers, state.admin_token.as_ref())?;
    let agents = state.store.agents().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        render(&agents, Utc::now()),
    )
        .into_response())
}

/// The page for `agents`, as of `now`.
pub fn render(agents: &[AgentRecord], now: DateTime<Utc>) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>ravan-watch</title>\n\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}\
         th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>\n\
         </head>\n<body>\n<h1>ravan-watch</h1>\n",
    );
    let _ = writeln!(
        html,
        "<p>{} watched agent{} at {}.</p>",
        agents.len(),
        if agents.len() == 1 { "" } else { "s" },
        time(now)
    );
    html.push_str(
        "<table>\n<thead><tr><th>Agent ID</th><th>Name</th><th>Status</th><th>Healthy</th>\
         <th>Last checked</th><th>Muted</th></tr></thead>\n<tbody>\n",
    );
    for agent in agents {
        let last = agent.state.last.as_ref();
        let status = last.map_or("not checked yet", |o| o.status.as_str());
        let healthy = match last.map(|o| o.is_healthy()) {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        let checked = agent
            .state
            .last_checked_at
            .map_or_else(|| "never".to_owned(), time);
        let muted = match (agent.muted, agent.muted_until) {
            (true, Some(until)) => format!("yes (until {})", time(until)),
            (true, None) => "yes".to_owned(),
            (false, Some(until)) if until > now => format!("until {}", time(until)),
            (false, _) => "no".to_owned(),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&agent.agent_id.to_string()),
            escape(agent.name.as_deref().unwrap_or("")),
            escape(status),
            escape(healthy),
            escape(&checked),
            escape(&muted),
        );
    }
    html.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    html
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Text made safe for an HTML element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
