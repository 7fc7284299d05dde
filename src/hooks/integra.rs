//! What VOIspeed Integra's placeholders (`!00`–`!07`) stand for, read off a
//! normalized event. Pure.
//!
//! The normalized event has no field for `!03` (own direct number), `!06`
//! (original caller) and `!07` (original called number); they are taken
//! from the notification's own fields named `direct_number`,
//! `original_caller` and `original_called`, when it has them. `!06` falls
//! back to the remote number of an incoming call (the caller is the
//! original one unless the PBX says otherwise), and `!07` is given only
//! with `CALL_IN`, as Integra documents. `CALL_FORWARD_IN` and
//! `CALL_ACTIVE` are never produced: the normalized event does not tell a
//! forwarded or a queued call from another one.

use crate::events::{CallEvent, Direction, EventType};
use crate::syntax::integra::Field;

/// The value of one placeholder for `event`, unencoded.
pub fn value(event: &CallEvent, field: Field) -> String {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    match field {
        Field::OwnExtension => text(&event.extension),
        Field::Remote => text(&event.remote),
        Field::Action => action(event).to_string(),
        Field::OwnDirectNumber => pbx_field(event, "direct_number").unwrap_or_default(),
        Field::Time => time(&event.at),
        Field::CallId => text(&event.call_id),
        Field::OriginalCaller => pbx_field(event, "original_caller")
            .or_else(|| (event.direction != Some(Direction::Out)).then(|| text(&event.remote)))
            .unwrap_or_default(),
        Field::OriginalCalled => match action(event) {
            "CALL_IN" => pbx_field(event, "original_called").unwrap_or_default(),
            _ => String::new(),
        },
    }
}

/// Integra's name for what happened (`!02`); empty for `other`, which
/// Integra has no name for.
pub fn action(event: &CallEvent) -> &'static str {
    match (event.kind, event.direction) {
        (EventType::Ringing, Some(Direction::Out)) | (EventType::Dialling, _) => "CALL_OUT",
        (EventType::Ringing, _) => "CALL_IN",
        (EventType::Answered, _) => "CALL_ACCEPT",
        (EventType::Rejected, _) => "CALL_BUSY",
        (EventType::Ended | EventType::Missed | EventType::Failed | EventType::Voicemail, _) => "CALL_CLOSE",
        (EventType::Other, _) => "",
    }
}

/// `at` (RFC 3339) as Integra writes a time: `dd/mm/yyyy_HH.MM.SS`, in UTC.
/// An `at` that cannot be read is replaced by the current time.
pub fn time(at: &str) -> String {
    let when = humantime::parse_rfc3339_weak(at.trim()).unwrap_or_else(|_| std::time::SystemTime::now());
    // Always `YYYY-MM-DDTHH:MM:SSZ`, so the parts are at fixed places.
    let t = humantime::format_rfc3339_seconds(when).to_string();
    match (t.get(0..4), t.get(5..7), t.get(8..10), t.get(11..13), t.get(14..16), t.get(17..19)) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => format!("{d}/{mo}/{y}_{h}.{mi}.{s}"),
        _ => String::new(),
    }
}

/// A field of the notification as text (a number or true/false too).
fn pbx_field(event: &CallEvent, name: &str) -> Option<String> {
    match event.pbx.get(name)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, direction: Option<Direction>) -> CallEvent {
        CallEvent {
            id: "01E".into(),
            branch: "milan".into(),
            kind,
            direction,
            extension: Some("35".into()),
            remote: Some("+390261616161".into()),
            call_id: Some("3250".into()),
            dial_id: None,
            external_id: None,
            at: "2026-03-04T05:06:07Z".into(),
            pbx: serde_json::json!({"direct_number": "0261610035", "original_called": "026161610", "n": 7}),
        }
    }

    #[test]
    fn the_action_for_every_type_and_direction() {
        use Direction::{In, Out};
        use EventType::*;
        let table = [
            (Ringing, Some(In), "CALL_IN"),
            (Ringing, None, "CALL_IN"),
            (Ringing, Some(Out), "CALL_OUT"),
            (Dialling, Some(Out), "CALL_OUT"),
            (Dialling, None, "CALL_OUT"),
            (Answered, Some(In), "CALL_ACCEPT"),
            (Answered, Some(Out), "CALL_ACCEPT"),
            (Rejected, Some(Out), "CALL_BUSY"),
            (Ended, Some(In), "CALL_CLOSE"),
            (Missed, Some(In), "CALL_CLOSE"),
            (Failed, None, "CALL_CLOSE"),
            (Voicemail, None, "CALL_CLOSE"),
            (Other, Some(In), ""),
        ];
        for (kind, direction, want) in table {
            assert_eq!(action(&event(kind, direction)), want, "{kind:?} {direction:?}");
        }
    }

    #[test]
    fn every_placeholder_of_an_incoming_call() {
        let e = event(EventType::Ringing, Some(Direction::In));
        let got: Vec<String> = Field::ALL.iter().map(|f| value(&e, *f)).collect();
        assert_eq!(
            got,
            [
                "35",
                "+390261616161",
                "CALL_IN",
                "0261610035",
                "04/03/2026_05.06.07",
                "3250",
                "+390261616161",
                "026161610"
            ]
        );
    }

    #[test]
    fn an_outgoing_call_has_no_original_caller_or_called_number_unless_the_pbx_says() {
        let mut e = event(EventType::Answered, Some(Direction::Out));
        assert_eq!(
            (value(&e, Field::OriginalCaller), value(&e, Field::OriginalCalled)),
            (String::new(), String::new())
        );
        e.pbx = serde_json::json!({"original_caller": 204});
        assert_eq!(value(&e, Field::OriginalCaller), "204");
    }

    #[test]
    fn time_is_day_month_year_then_hours_minutes_seconds() {
        assert_eq!(time("2026-11-23T14:05:09Z"), "23/11/2026_14.05.09");
        assert_eq!(time("2026-11-23T14:05:09.987Z"), "23/11/2026_14.05.09");
        assert_eq!(time("nonsense").len(), "dd/mm/yyyy_HH.MM.SS".len(), "falls back to now");
    }
}
