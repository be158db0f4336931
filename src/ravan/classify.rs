//! The classification of answers: an HTTP status and body of `/status` or `/info` turned into
//! an [`Observation`], an [`EffectiveAccount`] or a [`PollFailure`], per the API reference.
//!
//! Pure, so every answer the API documents (and many it does not) is tested without a server;
//! the client only fetches and hands over the bytes.
//!
//! Every piece of Ravan's text is clipped as it is read ([`Clipped`]): what the bodies carry
//! (statuses, account names and errors) by the types they deserialize into, and the messages
//! of error answers before they become a [`PollFailure`].

use serde::Deserialize;

use super::PollFailure;
use crate::domain::{Account, Clipped, Connection, Name, Observation, StatusWord};

/// Upstream messages are cut to this many characters before they reach a log or an alert.
const MAX_MESSAGE_CHARS: usize = 200;
/// Ravan's text, or text that quotes it, in a failure's message.
type Message = Clipped<MAX_MESSAGE_CHARS>;

/// `/status`'s `data`, as sent.
#[derive(Debug, Deserialize)]
struct StatusData {
    status: StatusWord,
    connected: bool,
    #[serde(default)]
    accounts: Vec<Account>,
}

#[derive(Debug, Deserialize)]
struct StatusBody {
    data: Option<StatusData>,
}

/// `/info`'s `data`: the agent's effective Cal.com account.
#[derive(Debug, Deserialize)]
struct InfoData {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    connected: Option<bool>,
    #[serde(default)]
    calcom_account_id: Option<serde_json::Value>,
    #[serde(default)]
    account_name: Option<Name>,
    #[serde(default)]
    status: Option<StatusWord>,
}

#[derive(Debug, Deserialize)]
struct InfoBody {
    data: Option<InfoData>,
}

/// What `/info` says the agent books through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectiveAccount {
    /// `type: none`: no connection at all.
    None,
    /// `type: org_linked` or `agent`: an account and its status.
    Account {
        connection: Connection,
        status: StatusWord,
        connected: bool,
        account: Account,
    },
}

impl EffectiveAccount {
    /// The observation of an agent whose `/status` found no private connection (`none`), once
    /// `/info` has said what it books through instead.
    pub(super) fn over(self, none: Observation) -> Observation {
        match self {
            Self::None => none,
            Self::Account {
                connection,
                status,
                connected,
                account,
            } => Observation {
                status,
                connected,
                accounts: vec![account],
                connection: Some(connection),
            },
        }
    }
}

/// What an error answer says about itself, in any of Ravan's shapes: `{success:false, message,
/// code}` (a string code), the gRPC-style `{code: 16, message, details}` (a numeric code), and
/// the envelope `{success:false, message, error: {code, message}}`.
#[derive(Debug, Default)]
struct ErrorBody {
    message: Option<Message>,
    code: Option<Message>,
}

/// Turns an HTTP answer of `/status` into an observation or a failure, per the API reference.
/// The observation's connection is `private` unless it says there is none (then `/info` may
/// tell more, see [`super::RavanClient::poll`]).
pub fn classify(status: u16, body: &[u8]) -> Result<Observation, PollFailure> {
    if status == 404 {
        // Only Ravan's own answer about the agent: a 404 page from a proxy, or from a wrong
        // RAVAN_API_BASE_URL, would make every agent look deleted.
        let err = error_body(body);
        if err
            .code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("NOT_FOUND"))
        {
            return Err(PollFailure::NotFound {
                message: err.message(),
            });
        }
    }
    let data = ok_data::<StatusBody, _>(status, body, |b| b.data)?;
    let mut obs = Observation {
        status: data.status,
        connected: data.connected,
        accounts: data.accounts,
        connection: None,
    };
    if !obs.has_no_private_connection() {
        obs.connection = Some(Connection::Private);
    }
    Ok(obs)
}

/// Turns an HTTP answer of `/info` into the agent's effective account, or a failure. A `type`
/// other than `agent`, `org_linked` or `none` is a failure: the connection cannot be judged.
pub fn classify_info(status: u16, body: &[u8]) -> Result<EffectiveAccount, PollFailure> {
    let data = ok_data::<InfoBody, _>(status, body, |b| b.data)?;
    let kind = data
        .kind
        .ok_or_else(|| PollFailure::BadBody("/info without a `type`".into()))?;
    let connection = match kind.as_str() {
        "none" => return Ok(EffectiveAccount::None),
        "org_linked" => Connection::OrgLinked,
        "agent" => Connection::Private,
        other => {
            return Err(PollFailure::BadBody(format!(
                "/info answered an unknown connection type {:?}",
                Clipped::<40>::new(other).as_str()
            )));
        }
    };
    let status = data
        .status
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| PollFailure::BadBody(format!("/info type {kind} without a `status`")))?;
    let id = match data.calcom_account_id {
        Some(serde_json::Value::String(s)) => Name::from(s),
        Some(serde_json::Value::Number(n)) => Name::from(n.to_string()),
        _ => Name::default(),
    };
    Ok(EffectiveAccount::Account {
        connection,
        connected: data
            .connected
            .unwrap_or(status == crate::domain::HEALTHY_STATUS),
        account: Account {
            id,
            account_name: data.account_name.unwrap_or_default(),
            status: status.clone(),
            error: None,
        },
        status,
    })
}

/// A 200's `data` (read by `data` from the body `B`), or the failure any other answer is.
pub(super) fn ok_data<B: serde::de::DeserializeOwned, D>(
    status: u16,
    body: &[u8],
    data: impl FnOnce(B) -> Option<D>,
) -> Result<D, PollFailure> {
    match status {
        200 => match serde_json::from_slice::<B>(body) {
            Ok(b) => {
                data(b).ok_or_else(|| PollFailure::BadBody("200 without a `data` object".into()))
            }
            Err(e) => Err(PollFailure::BadBody(format!(
                "200 with a body that does not parse: {}",
                Message::from(e.to_string())
            ))),
        },
        401 | 403 => {
            let err = error_body(body);
            Err(PollFailure::Unauthorized {
                status,
                message: err.message(),
            })
        }
        400..=499 => {
            let err = error_body(body);
            Err(PollFailure::Rejected {
                status,
                message: err.message(),
                code: err.code.map(String::from),
            })
        }
        500..=599 => Err(PollFailure::Server {
            status,
            message: error_body(body).message(),
        }),
        other => Err(PollFailure::BadBody(format!("unexpected HTTP {other}"))),
    }
}

/// Reads an error answer's message and code leniently: error bodies are for humans and may be
/// anything. A code may be a string or a number, at the top or inside `error`; the message is
/// the top one, with `error.message` after it when that says more. Both are clipped.
fn error_body(body: &[u8]) -> ErrorBody {
    let Ok(serde_json::Value::Object(top)) = serde_json::from_slice(body) else {
        return ErrorBody::default();
    };
    let inner = top.get("error");
    let (inner_message, inner_code) = match inner {
        Some(serde_json::Value::Object(e)) => (text_of(e.get("message")), text_of(e.get("code"))),
        Some(serde_json::Value::String(_)) => (text_of(inner), None),
        _ => (None, None),
    };
    let message = match (text_of(top.get("message")), inner_message) {
        (Some(m), Some(i)) if m != i => Some(Message::from(format!("{m}: {i}"))),
        (m, i) => m.or(i),
    };
    ErrorBody {
        message,
        code: text_of(top.get("code")).or(inner_code),
    }
}

/// A string or a number of an error body, trimmed and clipped; nothing when blank.
fn text_of(value: Option<&serde_json::Value>) -> Option<Message> {
    let text = match value? {
        serde_json::Value::String(s) => Message::new(s.trim()),
        serde_json::Value::Number(n) => Message::from(n.to_string()),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

impl ErrorBody {
    /// The message, or nothing.
    fn message(&self) -> String {
        self.message.as_deref().unwrap_or_default().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_documented_answers() {
        let ok = br#"{"success":true,"message":"Agent connection status retrieved","data":{"connected":true,"status":"active","accounts":[{"id":"a","account_name":"Main","status":"active","error":""}]}}"#;
        let obs = classify(200, ok).unwrap();
        assert!(obs.is_healthy());
        assert_eq!(obs.accounts[0].account_name, "Main");

        let none = br#"{"success":true,"message":"No agent-level connection found","data":{"connected":false,"status":"not_connected","accounts":[]}}"#;
        let obs = classify(200, none).unwrap();
        assert_eq!(obs.status, "not_connected");
        assert!(!obs.is_healthy());

        let bad =
            br#"{"success":false,"message":"agent_id must be a UUID","code":"INVALID_REQUEST"}"#;
        assert_eq!(
            classify(400, bad).unwrap_err(),
            PollFailure::Rejected {
                status: 400,
                code: Some("INVALID_REQUEST".into()),
                message: "agent_id must be a UUID".into()
            }
        );
        let unauth = classify(401, br#"{"success":false,"message":"Invalid token"}"#).unwrap_err();
        assert!(unauth.is_auth());
        assert_eq!(
            unauth.to_string(),
            "Ravan API refused the credentials (HTTP 401): Invalid token"
        );
        assert!(classify(403, b"").unwrap_err().is_auth());
        let server = classify(
            500,
            br#"{"success":false,"message":"boom","code":"INTERNAL_ERROR"}"#,
        )
        .unwrap_err();
        assert_eq!(
            server,
            PollFailure::Server {
                status: 500,
                message: "boom".into()
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_status_kept() {
        let body = br#"{"success":true,"extra":1,"data":{"connected":false,"status":"quarantined","accounts":[{"id":"a","new_field":true}],"more":{}}}"#;
        let obs = classify(200, body).unwrap();
        assert_eq!(obs.status, "quarantined");
        assert!(!obs.is_healthy());
    }

    #[test]
    fn unusable_bodies_are_failures_not_observations() {
        for (status, body) in [
            (200, &b"not json"[..]),
            (200, br#"{"success":true}"#),
            (200, br#"{"data":null}"#),
            (200, br#"{"data":{"connected":true}}"#),
            (200, br#"{"data":"active"}"#),
            (204, b""),
            (302, b""),
        ] {
            assert!(
                matches!(classify(status, body), Err(PollFailure::BadBody(_))),
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_messages_are_clipped() {
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(5000));
        let err = classify(502, long.as_bytes()).unwrap_err().to_string();
        assert!(err.chars().count() < 300, "{}", err.len());
    }

    // ----- /info -----

    fn info(data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"success": true, "message": "ok", "data": data}))
            .unwrap()
    }

    #[test]
    fn info_org_linked_is_an_org_linked_account_with_its_name_and_id() {
        for (status, connected) in [("active", true), ("errored", false)] {
            for (id, want_id) in [
                (serde_json::json!(4242), "4242"),
                (serde_json::json!("acc-77"), "acc-77"),
            ] {
                let body = info(serde_json::json!({
                    "connected": connected, "type": "org_linked", "calcom_account_id": id,
                    "account_name": "Org calendar", "status": status,
                    "api_base_url": "https://api.cal.com/v2",
                }));
                assert_eq!(
                    classify_info(200, &body).unwrap(),
                    EffectiveAccount::Account {
                        connection: Connection::OrgLinked,
                        status: status.into(),
                        connected,
                        account: Account {
                            id: want_id.into(),
                            account_name: "Org calendar".into(),
                            status: status.into(),
                            error: None,
                        },
                    },
                    "{status} {want_id}"
                );
            }
        }
    }

    #[test]
    fn info_without_connected_takes_it_from_the_status() {
        for (status, connected) in [("active", true), ("errored", false)] {
            let body = info(serde_json::json!({"type": "org_linked", "status": status}));
            let Ok(EffectiveAccount::Account {
                connected: got,
                account,
                ..
            }) = classify_info(200, &body)
            else {
                panic!("{status}: not an account");
            };
            assert_eq!(got, connected, "{status}");
            assert_eq!(
                (account.id.as_str(), account.account_name.as_str()),
                ("", "")
            );
        }
    }

    #[test]
    fn info_agent_is_the_private_connection_and_none_is_none() {
        let body = info(serde_json::json!({
            "connected": true, "type": "agent", "calcom_account_id": 9,
            "account_name": "Own key", "status": "active",
        }));
        let Ok(EffectiveAccount::Account {
            connection,
            status,
            account,
            ..
        }) = classify_info(200, &body)
        else {
            panic!("not an account");
        };
        assert_eq!(connection, Connection::Private);
        assert_eq!(status, "active");
        assert_eq!(account.account_name, "Own key");

        let none = info(serde_json::json!({
            "connected": false, "type": "none", "calcom_account_id": null,
            "account_name": null, "status": "not_connected", "api_base_url": null,
        }));
        assert_eq!(classify_info(200, &none).unwrap(), EffectiveAccount::None);
        // `none` needs no status.
        let bare = info(serde_json::json!({"type": "none"}));
        assert_eq!(classify_info(200, &bare).unwrap(), EffectiveAccount::None);
    }

    #[test]
    fn info_of_an_unknown_type_is_a_bad_body_naming_it_cut_short() {
        let body = info(serde_json::json!({"type": "team_pool", "status": "active"}));
        let err = classify_info(200, &body).unwrap_err();
        let PollFailure::BadBody(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("\"team_pool\""), "{message}");

        let long = format!("pool{}", "x".repeat(10_000));
        let body = info(serde_json::json!({"type": long, "status": "active"}));
        let err = classify_info(200, &body).unwrap_err();
        let PollFailure::BadBody(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("\"poolxxx"), "{message}");
        assert!(message.contains(crate::util::MARKER), "{message}");
        assert!(message.chars().count() < 120, "{}", message.chars().count());
        assert!(err.to_string().chars().count() < 200);
        // Case matters: the documented values are lowercase.
        let body = info(serde_json::json!({"type": "ORG_LINKED", "status": "active"}));
        assert!(matches!(
            classify_info(200, &body),
            Err(PollFailure::BadBody(m)) if m.contains("ORG_LINKED")
        ));
    }

    #[test]
    fn info_unusable_answers_are_failures() {
        let bad_bodies: [(&str, &[u8]); 12] = [
            ("no type", &info(serde_json::json!({"status": "active"}))),
            (
                "type null",
                &info(serde_json::json!({"type": null, "status": "active"})),
            ),
            (
                "type a number",
                &info(serde_json::json!({"type": 3, "status": "active"})),
            ),
            (
                "org_linked, no status",
                &info(serde_json::json!({"type": "org_linked"})),
            ),
            (
                "org_linked, status null",
                &info(serde_json::json!({"type": "org_linked", "status": null})),
            ),
            (
                "agent, blank status",
                &info(serde_json::json!({"type": "agent", "status": "  "})),
            ),
            ("not json", b"<html>hi</html>"),
            ("empty", b""),
            ("data null", br#"{"success":true,"data":null}"#),
            ("no data", br#"{"success":true}"#),
            ("data a string", br#"{"data":"org_linked"}"#),
            ("an array", b"[1,2,3]"),
        ];
        for (what, body) in bad_bodies {
            let got = classify_info(200, body);
            assert!(
                matches!(got, Err(PollFailure::BadBody(_))),
                "{what}: {got:?}"
            );
        }
        let got = classify_info(200, &info(serde_json::json!({"type": "org_linked"})));
        assert!(
            matches!(&got, Err(PollFailure::BadBody(m)) if m.contains("status")),
            "{got:?}"
        );
        let got = classify_info(200, &info(serde_json::json!({"status": "active"})));
        assert!(
            matches!(&got, Err(PollFailure::BadBody(m)) if m.contains("type")),
            "{got:?}"
        );

        let err = classify_info(401, br#"{"success":false,"message":"bad token"}"#).unwrap_err();
        assert!(err.is_auth(), "{err:?}");
        assert!(classify_info(403, b"nope").unwrap_err().is_auth());
        // A 404 from /info is no missing agent: /status has just answered for it.
        let err = classify_info(404, br#"{"message":"nope","code":"NOT_FOUND"}"#).unwrap_err();
        assert_eq!(
            err,
            PollFailure::Rejected {
                status: 404,
                code: Some("NOT_FOUND".into()),
                message: "nope".into()
            }
        );
        assert!(!err.is_not_found());
        assert!(matches!(
            classify_info(400, b"{}"),
            Err(PollFailure::Rejected { status: 400, .. })
        ));
        assert_eq!(
            classify_info(500, b"not json").unwrap_err(),
            PollFailure::Server {
                status: 500,
                message: String::new()
            }
        );
        assert!(matches!(
            classify_info(302, b""),
            Err(PollFailure::BadBody(m)) if m.contains("302")
        ));
    }

    #[test]
    fn info_odd_account_ids_do_not_panic() {
        for id in [
            serde_json::json!(null),
            serde_json::json!(1.5),
            serde_json::json!(-1),
            serde_json::json!(u64::MAX),
            serde_json::json!(true),
            serde_json::json!([1, 2]),
            serde_json::json!({"id": 1}),
            serde_json::json!("x".repeat(5000)),
        ] {
            let body = info(serde_json::json!({
                "type": "org_linked", "status": "active", "calcom_account_id": id.clone(),
                "account_name": "Org",
            }));
            let Ok(EffectiveAccount::Account { account, .. }) = classify_info(200, &body) else {
                panic!("{id}: not an account");
            };
            assert!(account.id.chars().count() <= MAX_MESSAGE_CHARS, "{id}");
        }
        // A number JSON cannot hold as f64 is a body that does not parse.
        let body = br#"{"data":{"type":"org_linked","status":"active","calcom_account_id":1e400}}"#;
        assert!(matches!(
            classify_info(200, body),
            Err(PollFailure::BadBody(_))
        ));
    }

    // ----- /status -----

    #[test]
    fn status_404_is_not_found() {
        let err = classify(
            404,
            br#"{"success":false,"message":"Agent not found","code":"NOT_FOUND"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            PollFailure::NotFound {
                message: "Agent not found".into()
            }
        );
        assert!(err.is_not_found());
        assert!(!err.is_auth());
        assert_eq!(err.kind(), "not_found");
        // Ravan's error code says "not found"...
        for body in [&br#"{"code":"NOT_FOUND"}"#[..], br#"{"code":"not_found"}"#] {
            assert!(classify(404, body).unwrap_err().is_not_found());
        }
        // ...but a 404 page that is not Ravan's (a proxy, a wrong base URL) is only a failed
        // poll: it must not make every agent look deleted.
        for body in [
            &b""[..],
            b"<html>Not Found</html>",
            b"null",
            b"[]",
            br#"{"detail":"Not Found"}"#,
            br#"{"success":true,"code":"OTHER"}"#,
            br#"{"success":false,"message":"Cannot GET /v1/api/v1/calcom/agents/x/status"}"#,
        ] {
            let err = classify(404, body).unwrap_err();
            assert!(!err.is_not_found(), "{:?}", String::from_utf8_lossy(body));
            assert!(
                matches!(err, PollFailure::Rejected { status: 404, .. }),
                "{err:?}"
            );
        }
        // Other failures are not "not found", nor is /info's.
        assert!(!classify(500, b"").unwrap_err().is_not_found());
        assert!(!classify(410, b"").unwrap_err().is_not_found());
        let info = PollFailure::Info(Box::new(PollFailure::NotFound {
            message: String::new(),
        }));
        assert!(!info.is_not_found());
    }

    #[test]
    fn status_leaves_the_connection_of_no_private_connection_undecided() {
        let none = br#"{"success":true,"message":"No agent-level connection found","data":{"connected":false,"status":"not_connected","accounts":[]}}"#;
        let obs = classify(200, none).unwrap();
        assert_eq!(obs.connection, None);
        assert!(obs.has_no_private_connection());
        // Without the field, `accounts` defaults to none: the same answer.
        let obs = classify(
            200,
            br#"{"data":{"connected":false,"status":"not_connected"}}"#,
        )
        .unwrap();
        assert_eq!(obs.connection, None);
        assert!(obs.has_no_private_connection());

        let ok = br#"{"success":true,"data":{"connected":true,"status":"active","accounts":[{"id":"a","account_name":"Main","status":"active","error":""}]}}"#;
        let obs = classify(200, ok).unwrap();
        assert_eq!(obs.connection, Some(Connection::Private));
        assert!(!obs.has_no_private_connection());
        // not_connected with an account listed is a private connection that is down.
        let down = br#"{"data":{"connected":false,"status":"not_connected","accounts":[{"id":"a","status":"not_connected"}]}}"#;
        let obs = classify(200, down).unwrap();
        assert_eq!(obs.connection, Some(Connection::Private));
        // Any other status without accounts, too.
        let errored = br#"{"data":{"connected":false,"status":"errored","accounts":[]}}"#;
        assert_eq!(
            classify(200, errored).unwrap().connection,
            Some(Connection::Private)
        );
    }
}
