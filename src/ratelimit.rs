//! Per-client limits on how fast new sessions may be created, so one misbehaving page or script
//! cannot make the daemon build peer connections in a loop.
//!
//! Pure: time is an argument, so the policy is tested without waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A token bucket per client address: `per_minute` sessions a minute, in bursts of up to that
/// many.
#[derive(Debug)]
pub struct SessionRateLimit {
    per_minute: u32,
    buckets: HashMap<IpAddr, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets idle this long are full again and can be forgotten, which bounds memory.
const FORGET_AFTER: Duration = Duration::from_secs(120);

impl SessionRateLimit {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), buckets: HashMap::new() }
    }

    /// Takes one session from `client`'s bucket, or says how long until one is available.
    pub fn allow(&mut self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        if self.buckets.len() > 1024 {
            self.buckets.retain(|_, b| now.saturating_duration_since(b.updated) < FORGET_AFTER);
        }
        let bucket =
            self.buckets.entry(client).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_sessions_trickle_at_the_rate() {
        let mut limit = SessionRateLimit::new(6);
        let client: IpAddr = "192.0.2.7".parse().expect("literal");
        let start = Instant::now();
        for _ in 0..6 {
            assert!(limit.allow(client, start).is_ok());
        }
        let wait = limit.allow(client, start).expect_err("bucket empty");
        assert_eq!(wait.as_secs(), 10, "one session per 10 s at 6 a minute");
        assert!(limit.allow(client, start + Duration::from_secs(9)).is_err());
        assert!(limit.allow(client, start + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn clients_have_their_own_buckets() {
        let mut limit = SessionRateLimit::new(1);
        let start = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("literal");
        let b: IpAddr = "2001:db8::2".parse().expect("literal");
        assert!(limit.allow(a, start).is_ok());
        assert!(limit.allow(a, start).is_err());
        assert!(limit.allow(b, start).is_ok(), "another client is not held back");
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let mut limit = SessionRateLimit::new(60);
        let start = Instant::now();
        for i in 0..2000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            limit.allow(ip, start).expect("first session");
        }
        limit.allow("192.0.2.9".parse().expect("literal"), start + FORGET_AFTER).expect("ok");
        assert!(limit.buckets.len() < 10, "{} buckets kept", limit.buckets.len());
    }
}
