//! Events published through the outbox: a business transaction writes an
//! `event_publish` job holding the whole event (its id included) next to
//! its own rows, so the event goes out **if and only if** the change
//! committed; the worker publishes it (at least once; consumers
//! deduplicate by the event id, which every retry keeps).

use std::sync::Arc;

use serde_json::json;

use crate::bus::{Bus, Event, TOPIC_ALARMS};
use crate::domain::now_ms;
use crate::service::notifications::Notifications;
use crate::service::outbox::JobHandler;
use crate::store::sql::NewJob;

/// The outbox kind that publishes one event.
pub const JOB_EVENT_PUBLISH: &str = "event_publish";

/// The job that publishes `event` on `topic` (write it in the business
/// transaction).
pub fn publish_job(topic: &str, event: &Event) -> NewJob {
    publish_job_at(topic, event, now_ms())
}

/// The same, published no earlier than `due_at` (epoch ms): a reminder
/// that exists if and only if its cause committed.
pub fn publish_job_at(topic: &str, event: &Event, due_at: i64) -> NewJob {
    NewJob {
        kind: JOB_EVENT_PUBLISH,
        payload: json!({ "topic": topic, "event": event }),
        dedup_key: format!("{JOB_EVENT_PUBLISH}:{}", event.id),
        due_at,
    }
}

/// The outbox handler: publish and wait for the bus to have it (a broker
/// that is down fails the job, which is retried with backoff).
///
/// With `local` (the embedded engine, whose in-process bus keeps nothing),
/// an alarm is first made into its notifications here, so the job is done
/// only once they exist: a crash at any point leaves the job to run again
/// (idempotent by event id), never an event nobody handled. The event is
/// then published marked `handled` for anyone else listening.
pub fn publish_handler(
    bus: Arc<dyn Bus>,
    local: Option<Notifications>,
) -> (&'static str, JobHandler) {
    let handler: JobHandler = Arc::new(move |payload| {
        let bus = bus.clone();
        let local = local.clone();
        Box::pin(async move {
            let topic = payload
                .get("topic")
                .and_then(serde_json::Value::as_str)
                .ok_or("payload without a topic")?
                .to_string();
            let mut event: Event = serde_json::from_value(
                payload
                    .get("event")
                    .cloned()
                    .ok_or("payload without an event")?,
            )
            .map_err(|e| format!("payload event: {e}"))?;
            if let (Some(notifications), TOPIC_ALARMS) = (&local, topic.as_str()) {
                notifications.handle(&event).await?;
                event.handled = true;
            }
            Ok(bus.publish(&topic, event).await?)
        })
    });
    (JOB_EVENT_PUBLISH, handler)
}
