//! Who holds the floor: one talker at a time, each for at most `max_talk_s`. Pure decisions that
//! take `now`, so the owner of the floor can be tested with any clock.

use std::time::{Duration, Instant};

/// A talker, as the session layer names it (its session id).
pub type TalkerId = u64;

/// Why a request to talk was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FloorError {
    /// Another viewer is talking; `for_s` is how long they have been.
    #[error("someone else is talking (for {for_s} s)")]
    Busy { for_s: u64 },
}

/// What viewers are told about the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorState {
    /// Nobody is talking.
    Free,
    /// `talker` is talking and will be cut off at `until`.
    Taken { talker: TalkerId, until: Instant },
}

/// The floor and its single holder.
#[derive(Debug)]
pub struct Floor {
    max_talk: Duration,
    holder: Option<(TalkerId, Instant)>,
}

impl Floor {
    pub fn new(max_talk: Duration) -> Self {
        Self { max_talk, holder: None }
    }

    /// Grants the floor to `talker` when it is free (or already theirs, which keeps the original
    /// deadline: asking again cannot extend a turn). Returns when the turn ends.
    pub fn request(&mut self, talker: TalkerId, now: Instant) -> Result<Instant, FloorError> {
        self.expire(now);
        match self.holder {
            Some((holder, since)) if holder == talker => Ok(since + self.max_talk),
            Some((_, since)) => Err(FloorError::Busy { for_s: (now - since).as_secs() }),
            None => {
                self.holder = Some((talker, now));
                Ok(now + self.max_talk)
            }
        }
    }

    /// `talker` lets go; returns whether they held the floor.
    pub fn release(&mut self, talker: TalkerId) -> bool {
        let held = self.holder.is_some_and(|(holder, _)| holder == talker);
        if held {
            self.holder = None;
        }
        held
    }

    /// Ends a turn that ran past `max_talk_s`; returns whom it cut off.
    pub fn expire(&mut self, now: Instant) -> Option<TalkerId> {
        let (holder, since) = self.holder?;
        if now < since + self.max_talk {
            return None;
        }
        self.holder = None;
        Some(holder)
    }

    /// Whether sound from `talker` should reach the speaker now.
    pub fn may_play(&mut self, talker: TalkerId, now: Instant) -> bool {
        self.expire(now);
        self.holder.is_some_and(|(holder, _)| holder == talker)
    }

    /// How long the current turn has left, if someone holds the floor.
    pub fn time_left(&mut self, now: Instant) -> Option<Duration> {
        match self.state(now) {
            FloorState::Taken { until, .. } => Some(until - now),
            FloorState::Free => None,
        }
    }

    pub fn state(&mut self, now: Instant) -> FloorState {
        self.expire(now);
        match self.holder {
            Some((talker, since)) => FloorState::Taken { talker, until: since + self.max_talk },
            None => FloorState::Free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(10);

    #[test]
    fn a_second_talker_is_refused_while_the_first_talks() {
        let t0 = Instant::now();
        let mut floor = Floor::new(MAX);
        assert_eq!(floor.request(1, t0), Ok(t0 + MAX));
        let later = t0 + Duration::from_secs(3);
        assert_eq!(floor.request(2, later), Err(FloorError::Busy { for_s: 3 }));
        assert!(floor.may_play(1, later));
        assert!(!floor.may_play(2, later));
        assert_eq!(floor.state(later), FloorState::Taken { talker: 1, until: t0 + MAX });
        assert!(!floor.release(2), "only the holder can let go");
        assert!(floor.release(1));
        assert_eq!(floor.state(later), FloorState::Free);
        assert_eq!(floor.request(2, later), Ok(later + MAX));
    }

    #[test]
    fn max_talk_cuts_the_talker_off_and_asking_again_does_not_extend_the_turn() {
        let t0 = Instant::now();
        let mut floor = Floor::new(MAX);
        floor.request(1, t0).unwrap();
        assert_eq!(floor.request(1, t0 + Duration::from_secs(9)), Ok(t0 + MAX));
        assert_eq!(floor.expire(t0 + Duration::from_millis(9_999)), None);
        assert!(!floor.may_play(1, t0 + MAX));
        assert_eq!(floor.expire(t0 + MAX), None, "already cut off");
        assert_eq!(floor.request(2, t0 + MAX), Ok(t0 + MAX + MAX));
    }

    #[test]
    fn expire_names_whom_it_cut_off() {
        let t0 = Instant::now();
        let mut floor = Floor::new(MAX);
        floor.request(7, t0).unwrap();
        assert_eq!(floor.expire(t0 + MAX), Some(7));
        assert_eq!(floor.state(t0 + MAX), FloorState::Free);
    }
}
