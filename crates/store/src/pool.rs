//! A small bounded connection pool for blocking readers. Connections are opened lazily up to
//! `max` and reused; a connection that failed with a connection-level error is dropped.

use crate::{Conn, ErrorKind, StoreConfig, StoreError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

struct Inner {
    idle: Vec<Conn>,
    open: usize,
}

#[derive(Clone)]
pub struct Pool {
    config: Arc<StoreConfig>,
    max: usize,
    wait_timeout: Duration,
    state: Arc<(Mutex<Inner>, Condvar)>,
}

impl Pool {
    pub fn new(config: StoreConfig, max: usize) -> Self {
        Pool {
            config: Arc::new(config),
            max: max.max(1),
            wait_timeout: Duration::from_secs(5),
            state: Arc::new((
                Mutex::new(Inner {
                    idle: Vec::new(),
                    open: 0,
                }),
                Condvar::new(),
            )),
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Runs `f` with a pooled connection (blocking). Waits at most 5 s for a free connection.
    pub fn with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.checkout()?;
        let result = f(&mut conn);
        self.checkin(conn);
        result
    }

    fn checkout(&self) -> Result<Conn, StoreError> {
        let (lock, cvar) = &*self.state;
        let mut inner = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = inner.idle.pop() {
                return Ok(c);
            }
            if inner.open < self.max {
                inner.open += 1;
                drop(inner);
                return match self.config.connect() {
                    Ok(c) => Ok(c),
                    Err(e) => {
                        let mut inner = lock.lock().unwrap_or_else(|p| p.into_inner());
                        inner.open -= 1;
                        cvar.notify_one();
                        Err(e)
                    }
                };
            }
            let (guard, timeout) = cvar
                .wait_timeout(inner, self.wait_timeout)
                .unwrap_or_else(|p| p.into_inner());
            inner = guard;
            if timeout.timed_out() && inner.idle.is_empty() && inner.open >= self.max {
                return Err(StoreError::new(
                    ErrorKind::Unavailable,
                    "store connection pool exhausted",
                ));
            }
        }
    }

    fn checkin(&self, conn: Conn) {
        let (lock, cvar) = &*self.state;
        // A broken PostgreSQL connection is discarded so the next caller reconnects.
        let broken = conn.is_closed();
        let mut inner = lock.lock().unwrap_or_else(|p| p.into_inner());
        if broken {
            inner.open -= 1;
        } else {
            inner.idle.push(conn);
        }
        cvar.notify_one();
    }
}
