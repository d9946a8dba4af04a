//! Timers keyed by id (reservation expiries). The actor only schedules and
//! cancels; what a timer does is the handler it was built with, and the
//! handler must be idempotent against the store (it ends the reservation
//! with a conditional update), so a timer that fires after a cancel, twice,
//! or on two nodes changes nothing the second time. Timers are rebuilt from
//! the store at start; ones already due fire at once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext as _, ActorFutureExt as _, AsyncContext as _, Context, Handler, Message,
    SpawnHandle, WrapFuture as _,
};

use crate::domain::now_ms;
use crate::shutdown::Shutdown;

pub type TimerHandler = Arc<dyn Fn(i64) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

pub struct Timers {
    handler: TimerHandler,
    pending: HashMap<i64, SpawnHandle>,
    /// The actor (and every pending timer with it) stops with the
    /// application: a stopped server fires nothing.
    stop: Shutdown,
}

impl Timers {
    pub fn new(handler: TimerHandler, stop: Shutdown) -> Timers {
        Timers {
            handler,
            pending: HashMap::new(),
            stop,
        }
    }
}

impl Actor for Timers {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let mut stop = self.stop.clone();
        ctx.spawn(
            async move { stop.wait().await }
                .into_actor(self)
                .map(|(), act, ctx| {
                    tracing::debug!(pending = act.pending.len(), "timers stopped");
                    ctx.stop();
                }),
        );
    }
}

/// Fire `id` at `at_ms` (epoch ms), replacing an earlier schedule of `id`.
pub struct Schedule {
    pub id: i64,
    pub at_ms: i64,
}

impl Message for Schedule {
    type Result = ();
}

pub struct Cancel {
    pub id: i64,
}

impl Message for Cancel {
    type Result = ();
}

/// How many timers are pending (tests, metrics).
pub struct Pending;

impl Message for Pending {
    type Result = usize;
}

impl Handler<Schedule> for Timers {
    type Result = ();

    fn handle(&mut self, msg: Schedule, ctx: &mut Context<Self>) {
        if let Some(old) = self.pending.remove(&msg.id) {
            ctx.cancel_future(old);
        }
        let delay = Duration::from_millis(u64::try_from(msg.at_ms - now_ms()).unwrap_or(0));
        let id = msg.id;
        let handle = ctx.run_later(delay, move |act, ctx| {
            act.pending.remove(&id);
            let fire = (act.handler)(id);
            ctx.spawn(fire.into_actor(act));
        });
        self.pending.insert(id, handle);
    }
}

impl Handler<Cancel> for Timers {
    type Result = ();

    fn handle(&mut self, msg: Cancel, ctx: &mut Context<Self>) {
        if let Some(handle) = self.pending.remove(&msg.id) {
            ctx.cancel_future(handle);
        }
    }
}

impl Handler<Pending> for Timers {
    type Result = usize;

    fn handle(&mut self, _: Pending, _: &mut Context<Self>) -> usize {
        self.pending.len()
    }
}
