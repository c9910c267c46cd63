//! ATTACH refusals and HISTORY over real TCP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, INSTANCE, Setup, pattern};
use relay::{MAX_PAYLOAD, RelayError, RelayLimits};

#[tokio::test]
async fn the_owner_attach_error_reaches_the_client() {
    let h = Harness::start(Setup {
        attach_error: Some("console not connected".to_owned()),
        ..Setup::default()
    })
    .await;
    let err = h.client().attach(&h.address, INSTANCE).await.unwrap_err();
    assert!(
        matches!(&err, RelayError::Refused(text) if text == "console not connected"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_replay_reaches_the_owner_with_the_instance() {
    let h = Harness::start(Setup::default()).await;
    let plain = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let replaying = h
        .client()
        .attach_replaying(&h.address, INSTANCE, 10_000)
        .await
        .unwrap();
    assert_eq!(*h.provider.replays.lock().unwrap(), [0, 10_000]);
    drop((plain, replaying));
}

#[tokio::test]
async fn history_round_trips_across_several_frames() {
    let bytes = pattern(3 * MAX_PAYLOAD + 17, 9);
    let h = Harness::start(Setup {
        history: Some((bytes.clone(), 1_700_000_000_123)),
        ..Setup::default()
    })
    .await;
    let got = h.client().history(&h.address, INSTANCE).await.unwrap();
    assert_eq!(got, Some((bytes, 1_700_000_000_123)));
}

#[tokio::test]
async fn empty_and_missing_histories_are_told_apart() {
    let h = Harness::start(Setup {
        history: Some((Vec::new(), 0)),
        ..Setup::default()
    })
    .await;
    let got = h.client().history(&h.address, INSTANCE).await.unwrap();
    assert_eq!(got, Some((Vec::new(), 0)));

    let h = Harness::start(Setup::default()).await;
    assert_eq!(
        h.client().history(&h.address, INSTANCE).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_history_over_the_client_limit_is_refused() {
    let h = Harness::start(Setup {
        history: Some((vec![b'x'; 2 * MAX_PAYLOAD], 5)),
        ..Setup::default()
    })
    .await;
    let client = relay::RelayClient::new(
        common::secret(),
        "node-b",
        RelayLimits {
            max_history_bytes: MAX_PAYLOAD,
            ..RelayLimits::default()
        },
    );
    let err = client.history(&h.address, INSTANCE).await.unwrap_err();
    assert!(matches!(err, RelayError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let (listener, address) = common::local_listener().await;
    drop(listener);
    let h = Harness::start(Setup::default()).await;
    let err = h
        .client()
        .attach(&address.to_string(), INSTANCE)
        .await
        .unwrap_err();
    assert!(matches!(err, RelayError::Connect(_)), "{err:?}");
}
