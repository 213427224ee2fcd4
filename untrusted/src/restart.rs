//! ICE restart over WHEP PATCH (RFC 9725 §4.3.2), as SDP text: the viewer sends only new ICE
//! credentials, while the webrtc crate restarts an answerer when it applies a whole new offer
//! carrying them. So the previous offer is reissued with the new credentials, and our new
//! credentials and candidates are cut out of the resulting answer for the 200 response.

/// One side's ICE username fragment and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

/// The first `a=ice-ufrag` and `a=ice-pwd` of a description (session or media level: with
/// BUNDLE every section carries the same ones).
pub fn credentials_of(sdp: &str) -> Option<IceCredentials> {
    let value = |prefix: &str| {
        sdp.lines()
            .find_map(|line| line.trim_end_matches('\r').strip_prefix(prefix).map(str::to_owned))
    };
    Some(IceCredentials { ufrag: value("a=ice-ufrag:")?, pwd: value("a=ice-pwd:")? })
}

/// `previous` (the offer in force) with the viewer's new credentials, and without the old
/// generation's candidates: the new ones arrive in the same PATCH or trickle after it.
pub fn restart_offer(previous: &str, new: &IceCredentials) -> String {
    let mut offer = String::with_capacity(previous.len());
    for line in previous.lines().map(|line| line.trim_end_matches('\r')) {
        if line.starts_with("a=ice-ufrag:") {
            offer.push_str(&format!("a=ice-ufrag:{}\r\n", new.ufrag));
        } else if line.starts_with("a=ice-pwd:") {
            offer.push_str(&format!("a=ice-pwd:{}\r\n", new.pwd));
        } else if !(line.starts_with("a=candidate:") || line == "a=end-of-candidates") {
            offer.push_str(line);
            offer.push_str("\r\n");
        }
    }
    offer
}

/// The sdpfrag answering a restart: our credentials, then each media section's line, mid and
/// candidates, then `a=end-of-candidates` when gathering finished (`complete`).
pub fn answer_fragment(answer: &str, complete: bool) -> Option<String> {
    let credentials = credentials_of(answer)?;
    let mut fragment =
        format!("a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", credentials.ufrag, credentials.pwd);
    let mut sections = 0;
    for line in answer.lines().map(|line| line.trim_end_matches('\r')) {
        let keep = line.starts_with("m=")
            || line.starts_with("a=mid:")
            || line.starts_with("a=candidate:");
        if keep {
            sections += usize::from(line.starts_with("m="));
            fragment.push_str(line);
            fragment.push_str("\r\n");
        }
    }
    if complete && sections > 0 {
        fragment.push_str("a=end-of-candidates\r\n");
    }
    Some(fragment)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:old1\r\na=ice-pwd:oldpassword1\r\n\
        a=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host\r\na=end-of-candidates\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:old1\r\na=ice-pwd:oldpassword1\r\na=mid:1\r\n";

    #[test]
    fn restart_offer_swaps_credentials_and_drops_old_candidates() {
        let new = IceCredentials { ufrag: "new2".into(), pwd: "newpassword2".into() };
        let offer = restart_offer(OFFER, &new);
        assert_eq!(credentials_of(&offer), Some(new));
        assert!(!offer.contains("old1") && !offer.contains("a=candidate"), "{offer}");
        assert!(!offer.contains("end-of-candidates"), "{offer}");
        assert_eq!(offer.matches("a=ice-ufrag:new2\r\n").count(), 2);
        assert!(offer.contains("a=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
    }

    #[test]
    fn answer_fragment_carries_credentials_sections_and_candidates() {
        let fragment = answer_fragment(OFFER, true).expect("credentials present");
        assert_eq!(
            fragment,
            "a=ice-ufrag:old1\r\na=ice-pwd:oldpassword1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
             a=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=end-of-candidates\r\n"
        );
        assert!(!answer_fragment(OFFER, false).expect("present").contains("end-of"));
        assert_eq!(answer_fragment("v=0\r\nm=video 9 RTP/AVP 0\r\n", true), None);
    }
}
