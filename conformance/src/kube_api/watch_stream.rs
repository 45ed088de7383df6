//! A watch's response body: the events of a [`Watch`], one JSON object per line, streamed
//! by a task that wakes on every write to the store, sends a `BOOKMARK` after each second
//! without events (when the client allows them), and ends the response at the watch's
//! timeout or when the client goes away (the server going down included).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame};
use serde_json::Value;
use tokio::sync::mpsc;

use super::state::{self, State};
use super::watch::Watch;

/// How long a watch stays quiet before a bookmark.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// The body: lines the streaming task sends.
#[derive(Debug)]
pub(crate) struct Events(mpsc::Receiver<Bytes>);

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|l| Ok(Frame::data(l))))
    }
}

fn line(event: &Value) -> Bytes {
    let mut text = serde_json::to_vec(event).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

/// Starts streaming `watch` (on the current runtime); the body to answer with.
pub(crate) fn start(watch: Watch, state: Arc<Mutex<State>>) -> Events {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(stream(watch, state, tx));
    Events(rx)
}

async fn stream(watch: Watch, state: Arc<Mutex<State>>, tx: mpsc::Sender<Bytes>) {
    let deadline = tokio::time::Instant::now() + watch.timeout;
    let (changed, (events, mut seen)) = {
        let state = state::lock(&state);
        (state.store.changed(), watch.start(&state.store))
    };
    let mut events = events;
    loop {
        for event in &events {
            if tx.send(line(event)).await.is_err() {
                return;
            }
        }
        let notified = changed.notified();
        tokio::pin!(notified);
        // Registered before the store is read again: no write can slip between.
        notified.as_mut().enable();
        let (next, revision) = watch.since(&state::lock(&state).store, seen);
        seen = revision;
        if !next.is_empty() {
            events = next;
            continue;
        }
        events = Vec::new();
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(BOOKMARK_EVERY) => {
                if watch.bookmarks {
                    events.push(watch.bookmark(seen));
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}
