//! A consumer that keeps failing: attempts with growing, jittered delays, a dead letter after N
//! attempts while the other consumers of the order are served, and a replay (by the library
//! function and by the real `dead-letters` subcommands) that delivers it exactly once.

use std::num::NonZeroU32;

use breakwater_origin::outbox::dead_letter::{self, Selection};
use breakwater_origin::outbox::{OutboxSettings, Settled, system_clock};

use crate::helpers::{Backend, TestApp, on_each_backend, spawn_app_with};
use crate::metrics;
use crate::outbox::{
    ALICE, BODY, DAY_MS, by_topic, expected_confirmation, read_json, row, sales, stock,
};

on_each_backend!(a_failing_sink_backs_off_dead_letters_after_n_attempts_and_replays_once);
async fn a_failing_sink_backs_off_dead_letters_after_n_attempts_and_replays_once(backend: Backend) {
    const MAX_ATTEMPTS: u32 = 4;
    // The sink is a regular file: creating a directory there is a real I/O error.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let sink = blocker.path().to_owned();
    let settings = OutboxSettings::default();
    let backoff = settings.backoff;
    let app = spawn_app_with(backend, |s| {
        s.outbox.confirmation_dir = sink.clone();
        s.outbox.max_attempts = NonZeroU32::new(MAX_ATTEMPTS).unwrap();
    })
    .await;
    let stock3 = stock(&app, 3).await;
    let order = app.place_order(ALICE, "failing", BODY).await;
    let id = order["id"].as_i64().unwrap();

    let mut now = system_clock();
    let mut previous_available_at = i64::MIN;
    for attempt in 1..=MAX_ATTEMPTS {
        let outcomes = app.outbox.deliver_due(now).await.unwrap();
        let confirmation: Vec<_> = outcomes
            .iter()
            .filter(|o| o.topic == "confirmation")
            .collect();
        assert_eq!(confirmation.len(), 1, "attempt {attempt}: {outcomes:?}");
        assert_eq!(confirmation[0].attempt, attempt);
        if attempt == 1 {
            // The other consumers do not wait for the failing one.
            assert_eq!(
                by_topic(&outcomes),
                [
                    ("analytics", "delivered"),
                    ("confirmation", "retrying"),
                    ("inventory", "delivered")
                ]
            );
        } else {
            assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        }
        let (attempts, available_at, delivered_at, dead_at, last_error) =
            row(&app, id, "confirmation").await;
        assert_eq!(attempts, i64::from(attempt));
        assert_eq!(delivered_at, None);
        let error = last_error.expect("the error is recorded");
        assert!(error.contains("cannot write confirmation"), "{error}");
        match &confirmation[0].settled {
            Settled::Retrying {
                available_at: at,
                error: reported,
            } => {
                assert!(attempt < MAX_ATTEMPTS);
                assert_eq!((*at, reported), (available_at, &error));
                // Full jitter within a window that doubles with each attempt.
                let ceiling = i64::try_from(backoff.ceiling_ms(attempt)).unwrap();
                assert!(
                    (now..=now + ceiling).contains(&available_at),
                    "attempt {attempt}: {available_at} not in [{now}, {now} + {ceiling}]"
                );
                assert!(available_at > previous_available_at);
                assert_eq!(dead_at, None);
                if available_at > now {
                    let early = app.outbox.deliver_due(available_at - 1).await.unwrap();
                    assert!(early.is_empty(), "claimed before it was due: {early:?}");
                }
                previous_available_at = available_at;
                now = available_at + 1;
            }
            Settled::DeadLettered { error: reported } => {
                assert_eq!(attempt, MAX_ATTEMPTS, "dead-lettered early");
                assert_eq!(reported, &error);
                assert_eq!(dead_at, Some(now));
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    let letters = dead_letter::list(&app.db, false).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(
        (letter.order_id, letter.topic.as_str(), letter.attempts),
        (id, "confirmation", i64::from(MAX_ATTEMPTS))
    );
    assert!(letter.last_error.contains("cannot write confirmation"));
    assert_eq!((letter.dead_at, letter.replayed_at), (now, None));
    let exposed = metrics::scrape(&app).await;
    assert_eq!(exposed.value(metrics::DEAD_LETTERS, &[]), Some(1.0));
    assert!(
        app.outbox
            .deliver_due(now + DAY_MS)
            .await
            .unwrap()
            .is_empty()
    );
    for topic in ["inventory", "analytics"] {
        assert!(row(&app, id, topic).await.2.is_some(), "{topic} delivered");
    }

    // Fix the sink, then replay.
    std::fs::remove_file(&sink).unwrap();
    let replayed_at = now + 10;
    let replayed = dead_letter::replay(&app.db, &Selection::Ids(vec![letter.id]), replayed_at)
        .await
        .unwrap();
    assert_eq!(replayed, [letter.id]);
    assert_eq!(
        row(&app, id, "confirmation").await,
        (0, replayed_at, None, None, None)
    );
    let again = dead_letter::replay(&app.db, &Selection::All, replayed_at + 1)
        .await
        .unwrap();
    assert!(again.is_empty(), "replayed twice: {again:?}");
    assert!(dead_letter::list(&app.db, false).await.unwrap().is_empty());
    let history = dead_letter::list(&app.db, true).await.unwrap();
    assert_eq!(history[0].replayed_at, Some(replayed_at));

    let delivered = app.outbox.deliver_due(replayed_at).await.unwrap();
    assert_eq!(by_topic(&delivered), [("confirmation", "delivered")]);
    let exposed = metrics::scrape(&app).await;
    assert_eq!(exposed.value(metrics::DEAD_LETTERS, &[]), Some(0.0));
    assert_eq!(exposed.value(metrics::PENDING, &[]), Some(0.0));
    assert_eq!(delivered[0].attempt, 1);
    assert_eq!(
        read_json(&sink.join(format!("order-{id}.json"))),
        expected_confirmation(&order)
    );
    assert!(
        app.outbox
            .deliver_due(now + DAY_MS)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stock(&app, 3).await, stock3 - 2, "inventory applied once");
    assert_eq!(sales(&app, 3).await.map(|s| (s.0, s.1)), Some((2, 1)));
    std::fs::remove_dir_all(&sink).unwrap();
}

/// Runs the real binary with `args` and `--database-url`: (success, stdout, stderr).
async fn binary(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_breakwater-origin"));
    command
        .args(args)
        .args(["--database-url", &app.database_url]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

on_each_backend!(the_dead_letters_subcommands_list_and_replay);
async fn the_dead_letters_subcommands_list_and_replay(backend: Backend) {
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let sink = blocker.path().to_owned();
    let app = spawn_app_with(backend, |s| {
        s.outbox.confirmation_dir = sink.clone();
        s.outbox.max_attempts = NonZeroU32::MIN;
    })
    .await;
    let order = app.place_order(ALICE, "cli", BODY).await;
    let id = order["id"].as_i64().unwrap();
    let outcomes = app.outbox.deliver_due(system_clock()).await.unwrap();
    assert!(
        outcomes
            .iter()
            .any(|o| o.topic == "confirmation" && o.settled.as_str() == "dead-lettered"),
        "{outcomes:?}"
    );
    let letter = dead_letter::list(&app.db, false).await.unwrap()[0].id;

    let (ok, stdout, stderr) = binary(&app, &["dead-letters", "list"]).await;
    assert!(ok, "{stderr}");
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let prefix = format!(
        "id={letter} order={id} topic=confirmation attempts=1 error=\"cannot write confirmation"
    );
    assert!(lines[0].starts_with(&prefix), "{}", lines[0]);
    assert!(lines[0].contains(" dead_at=20"), "{}", lines[0]);

    std::fs::remove_file(&sink).unwrap();
    let id_arg = letter.to_string();
    let (ok, stdout, stderr) = binary(&app, &["dead-letters", "replay", "--id", &id_arg]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("replayed 1 dead letter: {letter}\n"));
    let (ok, stdout, stderr) = binary(&app, &["dead-letters", "replay", "--id", &id_arg]).await;
    assert!(!ok, "a second replay of one id must fail");
    assert_eq!(stdout, "replayed 0 dead letters\n");
    assert!(stderr.contains("not replayed"), "{stderr}");
    let (ok, stdout, _) = binary(&app, &["dead-letters", "list"]).await;
    assert!(ok && stdout.is_empty(), "{stdout}");

    let delivered = app.outbox.deliver_due(system_clock()).await.unwrap();
    assert_eq!(by_topic(&delivered), [("confirmation", "delivered")]);
    assert_eq!(
        read_json(&sink.join(format!("order-{id}.json"))),
        expected_confirmation(&order)
    );
    std::fs::remove_dir_all(&sink).unwrap();
}
