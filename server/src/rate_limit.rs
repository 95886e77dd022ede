//! In-memory fixed-window rate limits, keyed by whatever the route chooses (IP, email, user).
//!
//! Per process: with several server processes each enforces its own budget, which is fine for the
//! abuse limits here (slowing down password guessing and sign-up floods), not for billing.

use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::config::Config;
use crate::error::ApiError;

/// Above this many tracked keys, expired windows are swept on the next check.
const SWEEP_ABOVE: usize = 10_000;

/// At most `limit` hits per key per `window`. A limit of 0 disables the limiter.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: DashMap<String, (Instant, u32)>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: DashMap::new(),
        }
    }

    /// Counts one hit for `key`; 429 `rate_limited` with `Retry-After` once the key's budget for
    /// the current window is spent.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if self.windows.len() > SWEEP_ABOVE {
            self.windows
                .retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let mut entry = self.windows.entry(key.to_string()).or_insert((now, 0));
        let (start, count) = entry.value_mut();
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        if *count >= self.limit {
            let left = self.window.saturating_sub(now.duration_since(*start));
            return Err(ApiError::too_many_requests(left.as_secs_f64().ceil() as u64));
        }
        *count += 1;
        Ok(())
    }
}

/// The limiters of the routes that need one.
#[derive(Debug)]
pub struct RateLimits {
    /// Login (and MFA step-up) attempts per client IP.
    pub login_ip: RateLimiter,
    /// Login attempts per target email, whatever IP they come from.
    pub login_email: RateLimiter,
    /// Sign-ups per client IP; also used for password-reset requests.
    pub register_ip: RateLimiter,
    /// Token refreshes per client IP.
    pub refresh_ip: RateLimiter,
    /// Invitations sent, keyed by the caller's choice (e.g. inviting user or org).
    pub invitations: RateLimiter,
}

impl RateLimits {
    pub fn from_config(config: &Config) -> Self {
        let window = Duration::from_secs(config.rate_limit_window_secs.max(1));
        Self {
            login_ip: RateLimiter::new(config.rate_limit_login, window),
            login_email: RateLimiter::new(config.rate_limit_login, window),
            register_ip: RateLimiter::new(config.rate_limit_register, window),
            refresh_ip: RateLimiter::new(config.rate_limit_refresh, window),
            invitations: RateLimiter::new(config.rate_limit_invitations, window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_limit_then_refuses_with_retry_after() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let err = limiter.check("a").expect_err("limited");
        assert_eq!(err.code, "rate_limited");
        assert!(matches!(err.retry_after, Some(s) if (1..=60).contains(&s)));
        // Other keys have their own budget.
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn a_new_window_starts_afresh() {
        let limiter = RateLimiter::new(1, Duration::from_millis(50));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn zero_disables() {
        let limiter = RateLimiter::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            assert!(limiter.check("a").is_ok());
        }
    }
}
