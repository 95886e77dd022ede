//! Bad input and slow peers: the offender is closed with a reason, everyone else carries on.

use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;

use crate::{block, client, id, setup, setup_with};

#[tokio::test]
async fn malformed_frames_close_only_the_sender() {
    let (app, owner, ws) = setup().await;
    let mut good = client(&app, &owner, ws).await;
    let garbage: [&[u8]; 4] = [
        &[0, 2, 0xff, 0xff, 0xff], // update with a bogus length
        &[0, 9],                   // unknown sync subtype
        &[1, 5, 1, 2],             // truncated awareness
        &[0, 2, 3, 1, 2, 3],       // an update payload that is not a Yjs update
    ];
    for frame in garbage {
        let mut bad = client(&app, &owner, ws).await;
        bad.send_raw(frame.to_vec()).await;
        let closed = bad.wait_closed().await;
        assert_eq!(closed.code, 1007, "frame {frame:?}");
        assert!(!closed.reason.is_empty(), "the close says why");
    }
    let mut text = client(&app, &owner, ws).await;
    text.send_message(Message::Text("hello".into())).await;
    assert_eq!(text.wait_closed().await.code, 1003);

    // The room and the other peer are unaffected.
    let mut other = client(&app, &owner, ws).await;
    let block_id = id();
    good.put_block(&block_id, block("still fine")).await;
    other
        .pump_until(|c| c.canvas_json()["blocks"].get(&block_id).is_some())
        .await;
    app.stop().await;
}

#[tokio::test]
async fn oversized_frames_are_refused_with_1009() {
    let (app, owner, ws) = setup_with(|c| c.max_frame_bytes = 4096).await;
    let mut big = client(&app, &owner, ws).await;
    big.put_block(
        &id(),
        serde_json::json!({ "type": "NODE", "name": "x".repeat(5000) }),
    )
    .await;
    let closed = big.wait_closed().await;
    assert_eq!(closed.code, 1009);
    // Nothing of it was applied.
    let fresh = client(&app, &owner, ws).await;
    assert_eq!(fresh.block_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_consumer_is_closed_not_silently_starved() {
    let (app, owner, ws) = setup_with(|c| c.peer_queue = 4).await;
    let mut writer = client(&app, &owner, ws).await;
    let mut sleeper = client(&app, &owner, ws).await;
    // The sleeper stops reading; the writer sends far more than the socket buffers hold.
    let payload = "y".repeat(60_000);
    for i in 0..200 {
        writer
            .put_block(&id(), serde_json::json!({ "type": "NODE", "name": format!("{i}"), "config": { "blob": payload } }))
            .await;
    }
    writer.settle().await;
    let closed = sleeper.wait_closed().await;
    assert_eq!(closed.code, 1013, "{closed:?}");
    assert!(closed.reason.contains("slow"));
    // The writer was never slowed down or closed, and the sleeper resyncs on reconnect.
    assert!(writer.closed.is_none());
    sleeper.connect().await;
    assert_eq!(sleeper.block_count(), 200);
    let metrics = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("nox_slow_consumers_closed_total 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pings_keep_an_idle_connection_open() {
    let (app, owner, ws) = setup().await;
    let mut idle = client(&app, &owner, ws).await;
    idle.pump_for(Duration::from_millis(500)).await;
    assert!(idle.closed.is_none());
    app.stop().await;
}
