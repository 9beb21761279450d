//! The record of a run: what the built-in loggers keep.

use std::time::Duration;

use twill::events::journal::Journal;
use twill::events::{Event, EventKind, JsonLines, Logger, OpKind, Stream};
use twill::{env, with_settings, Settings};

fn progress(done: bool) -> Event {
    Event {
        time: 1_700_000_000_500,
        host: Some("web1".into()),
        kind: EventKind::Progress {
            op: OpKind::Put,
            path: "/srv/app.tar.gz".into(),
            bytes: 1 << 20,
            total: Some(4 << 20),
            started: 1_700_000_000_000,
            done,
        },
    }
}

fn printed() -> Event {
    Event {
        time: 1_700_000_000_600,
        host: Some("web1".into()),
        kind: EventKind::Output {
            stream: Stream::Out,
            text: "[web1] put: app.tar.gz -> /srv/app.tar.gz\n".into(),
        },
    }
}

#[test]
fn progress_is_transient_and_the_record_keepers_leave_it_out() {
    assert!(progress(false).kind.is_transient());
    assert!(!printed().kind.is_transient());

    let mut lines = JsonLines::new(Vec::new());
    for e in [progress(false), printed(), progress(true)] {
        lines.log(&e);
    }
    let kept = String::from_utf8(lines.into_inner()).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(kept.contains(r#""event":"output""#), "{kept}");

    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "run-1").unwrap();
    for e in [progress(false), printed(), progress(true)] {
        journal.log(&e);
    }
    let path = journal.path().to_path_buf();
    drop(journal);
    let kept = std::fs::read_to_string(path).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(!kept.contains("progress"), "{kept}");
}

#[test]
fn a_progress_event_in_json() {
    let json = serde_json::to_string(&progress(false)).unwrap();
    assert_eq!(
        json,
        r#"{"time":1700000000500,"host":"web1","event":"progress","op":"put","path":"/srv/app.tar.gz","bytes":1048576,"total":4194304,"started":1700000000000}"#
    );
    let back: Event = serde_json::from_str(&json).unwrap();
    assert_eq!(back, progress(false));
    let done = serde_json::to_string(&progress(true)).unwrap();
    assert!(done.ends_with(r#","done":true}"#), "{done}");
}

#[test]
fn progress_delay_is_a_setting_in_seconds() {
    assert_eq!(env().progress_delay(), Duration::from_millis(500));
    let s = Settings::new().set_str("progress_delay", "0.2").unwrap();
    with_settings(s, || {
        assert_eq!(env().progress_delay(), Duration::from_millis(200))
    });
    assert!(Settings::new().set_str("progress_delay", "soon").is_err());
}
