//! The API calls one refresh made, noted where every request is sent
//! (`http::send`), so that the caller's metrics count real requests with
//! their status and latency, whatever the provider needs per refresh
//! (cloudscale one, Exoscale several).
//!
//! A task-local rather than a return value: the [`crate::Provider`] trait
//! stays as small as it is. Requests sent outside [`recorded`] (metadata
//! look-ups, tasks a provider spawns) are not noted.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a request did, by its method: reads are `get`, anything that
/// changes where the address points is `assign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Get,
    Assign,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Assign => "assign",
        }
    }
}

/// One request: its kind, the HTTP status (None when no answer came) and
/// how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    pub code: Option<u16>,
    pub duration: Duration,
}

type Calls = Arc<Mutex<Vec<Call>>>;

tokio::task_local! {
    static CALLS: Calls;
}

/// Runs `f`, returning its output and the requests it sent. A timeout
/// around it cuts the list short: what was not answered is not in it.
pub async fn recorded<F: Future>(f: F) -> (F::Output, Vec<Call>) {
    let calls = Calls::default();
    let out = CALLS.scope(calls.clone(), f).await;
    let list = match calls.lock() {
        Ok(mut l) => std::mem::take(&mut *l),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    (out, list)
}

pub(crate) fn note(method: &reqwest::Method, code: Option<u16>, started: Instant) {
    let operation = if method == reqwest::Method::GET {
        Operation::Get
    } else {
        Operation::Assign
    };
    let call = Call {
        operation,
        code,
        duration: started.elapsed(),
    };
    let _ = CALLS.try_with(|calls| {
        if let Ok(mut l) = calls.lock() {
            l.push(call);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_only_inside_the_scope() {
        note(&reqwest::Method::GET, Some(200), Instant::now());
        let ((), calls) = recorded(async {
            note(&reqwest::Method::GET, Some(200), Instant::now());
            note(&reqwest::Method::PATCH, None, Instant::now());
        })
        .await;
        let ops: Vec<_> = calls.iter().map(|c| (c.operation, c.code)).collect();
        assert_eq!(
            ops,
            [(Operation::Get, Some(200)), (Operation::Assign, None)]
        );
    }
}
