//! An interceptor that retransmits each packet at most once.
//!
//! The crate's NACK responder answers every NACK. A receiver behind a full bottleneck queue
//! keeps asking for a lost packet until the retransmission arrives, which takes as long as the
//! queue is deep, so each loss is sent again and again; the copies keep the queue full and the
//! link stays overloaded long after the encoder has come down (measured: 130 kbit/s of repeats
//! on a 300 kbit/s link). One retransmission per packet still repairs random loss, which is
//! what NACK is for on a LAN.

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::{HashSet, VecDeque};
use std::time::Instant;

/// Wire-ward of the NACK responder (4 000) and application-ward of the pacer (3 000), so it
/// sees the responder's output before congestion control counts it.
pub const SLOT: usize = 3_500;
/// How many recent retransmissions are remembered: more than a NACK history holds.
const REMEMBERED: usize = 256;

#[derive(Default)]
pub struct RetransmitOnce {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
    sent: HashSet<(u32, u16)>,
    order: VecDeque<(u32, u16)>,
}

impl RetransmitOnce {
    /// True when `key` was not retransmitted recently (and records it).
    fn first_time(&mut self, key: (u32, u16)) -> bool {
        if !self.sent.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.sent.remove(&old);
        }
        true
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RetransmitOnce {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if msg.message.has(&Attribute::Retransmission)
            && let Packet::Rtp(packet) = &msg.message.packet
            && !self.first_time((packet.header.ssrc, packet.header.sequence_number))
        {
            return Ok(());
        }
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for RetransmitOnce {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtp::packet::Packet as RtpPacket;

    fn rtp(seq: u16, retransmission: bool) -> TaggedPacket {
        let mut packet = RtpPacket::default();
        packet.header.ssrc = 7;
        packet.header.sequence_number = seq;
        let mut message = AttributedPacket::new(Packet::Rtp(packet));
        if retransmission {
            message.add(Attribute::Retransmission);
        }
        TaggedPacket { now: Instant::now(), transport: Default::default(), message }
    }

    fn passed(filter: &mut RetransmitOnce, packet: TaggedPacket) -> bool {
        filter.handle_write(packet).expect("never fails");
        filter.poll_write().is_some()
    }

    #[test]
    fn each_packet_is_retransmitted_once_and_originals_always_pass() {
        let mut filter = RetransmitOnce::default();
        assert!(passed(&mut filter, rtp(1, false)));
        assert!(passed(&mut filter, rtp(1, true)), "the first retransmission goes out");
        assert!(!passed(&mut filter, rtp(1, true)), "a repeat does not");
        assert!(passed(&mut filter, rtp(2, true)));
        assert!(passed(&mut filter, rtp(1, false)), "originals are never held back");
        // Forgotten after enough others, so sequence numbers that wrap are served again.
        for seq in 100..100 + REMEMBERED as u16 {
            assert!(passed(&mut filter, rtp(seq, true)));
        }
        assert!(passed(&mut filter, rtp(1, true)));
    }
}
