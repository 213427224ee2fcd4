//! Puts RTP packets back in sequence order, holding `depth` packets back before playing starts
//! so a late packet still finds its place; a packet that never came is reported as lost so the
//! decoder can conceal it.

use std::collections::BTreeMap;

/// One 20 ms slot of the playout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The packet for this slot.
    Packet(Vec<u8>),
    /// The packet for this slot is missing; a later one has arrived.
    Lost,
}

/// Reorders packets by their (wrapping) 16-bit RTP sequence number.
#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    /// Extended sequence number of the next slot to play, once playing.
    next: Option<u64>,
    /// The extended sequence number last pushed, to unwrap the next one near it.
    last: Option<u64>,
    packets: BTreeMap<u64, Vec<u8>>,
    /// The talker stopped: play what is left without waiting for `depth` packets.
    finishing: bool,
}

impl JitterBuffer {
    /// `depth`: packets held back before playing starts (at least one).
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            next: None,
            last: None,
            packets: BTreeMap::new(),
            finishing: false,
        }
    }

    /// Adds a packet; one that arrives after its slot was played is dropped.
    pub fn push(&mut self, seq: u16, payload: Vec<u8>) {
        let extended = match self.last {
            None => u64::from(seq) + (1 << 16),
            Some(last) => {
                let delta = i64::from(seq.wrapping_sub(last as u16) as i16);
                last.saturating_add_signed(delta)
            }
        };
        self.last = Some(self.last.map_or(extended, |last| last.max(extended)));
        if self.next.is_some_and(|next| extended < next) {
            return;
        }
        self.packets.insert(extended, payload);
    }

    /// The next slot to play, or `None` while buffering (at the start, or after running dry).
    pub fn pop(&mut self) -> Option<Slot> {
        let Some((&first, _)) = self.packets.first_key_value() else {
            // Ran dry: buffer up again before playing on.
            self.next = None;
            self.finishing = false;
            return None;
        };
        let next = match self.next {
            Some(next) if first <= next + 4 * self.depth as u64 => next,
            // A sender that jumped far ahead (a restarted stream) must not leave us playing
            // thousands of lost slots: skip to what is buffered.
            Some(_) => first,
            None if self.finishing || self.packets.len() >= self.depth => first,
            None => return None,
        };
        self.next = Some(next + 1);
        Some(self.packets.remove(&next).map_or(Slot::Lost, Slot::Packet))
    }

    /// The talker stopped: what is buffered plays without waiting for more.
    pub fn finish(&mut self) {
        self.finishing = true;
    }

    /// Packets held back before playing starts.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(buffer: &mut JitterBuffer) -> Vec<Slot> {
        std::iter::from_fn(|| buffer.pop()).collect()
    }

    #[test]
    fn holds_depth_packets_back_then_plays_in_order() {
        let mut buffer = JitterBuffer::new(3);
        buffer.push(10, vec![10]);
        buffer.push(12, vec![12]);
        assert_eq!(buffer.pop(), None, "still buffering");
        buffer.push(11, vec![11]);
        let slots = drain(&mut buffer);
        assert_eq!(slots, [10, 11, 12].map(|b| Slot::Packet(vec![b])));
    }

    #[test]
    fn a_gap_is_reported_lost_and_a_late_packet_is_dropped() {
        let mut buffer = JitterBuffer::new(1);
        buffer.push(1, vec![1]);
        assert_eq!(buffer.pop(), Some(Slot::Packet(vec![1])));
        buffer.push(3, vec![3]);
        assert_eq!(buffer.pop(), Some(Slot::Lost));
        buffer.push(2, vec![2]);
        assert_eq!(buffer.pop(), Some(Slot::Packet(vec![3])));
        assert!(buffer.is_empty(), "the late packet 2 was dropped");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut buffer = JitterBuffer::new(2);
        buffer.push(65_535, vec![1]);
        buffer.push(0, vec![2]);
        buffer.push(1, vec![3]);
        let slots = drain(&mut buffer);
        assert_eq!(slots, [1, 2, 3].map(|b| Slot::Packet(vec![b])));
    }

    #[test]
    fn running_dry_buffers_up_again_and_a_jump_skips_ahead() {
        let mut buffer = JitterBuffer::new(2);
        buffer.push(1, vec![1]);
        buffer.push(2, vec![2]);
        assert_eq!(drain(&mut buffer).len(), 2);
        buffer.push(3, vec![3]);
        assert_eq!(buffer.pop(), None, "one packet is not enough to restart");
        buffer.push(500, vec![4]);
        assert_eq!(buffer.pop(), Some(Slot::Packet(vec![3])));
        assert_eq!(buffer.pop(), Some(Slot::Packet(vec![4])), "skipped the gap");
        assert_eq!(buffer.pop(), None, "ran dry");
        buffer.push(501, vec![5]);
        assert_eq!(buffer.pop(), None, "buffering again");
        buffer.finish();
        assert_eq!(buffer.pop(), Some(Slot::Packet(vec![5])), "played out when finishing");
    }
}
