//! Parsing WHEP PATCH bodies: `application/trickle-ice-sdpfrag` (RFC 8840).

use webrtc::peer_connection::RTCIceCandidateInit;

/// More candidates than any browser trickles for one session; a bigger fragment is abuse.
pub const MAX_CANDIDATES: usize = 64;

/// Why a fragment was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrickleError {
    /// The body is not text.
    #[error("the SDP fragment is not UTF-8")]
    NotUtf8,
    /// A line is not an SDP `x=value` line.
    #[error("line {0} of the SDP fragment is not an SDP line")]
    BadLine(usize),
    /// More candidates than [`MAX_CANDIDATES`].
    #[error("the SDP fragment carries more than {MAX_CANDIDATES} candidates")]
    TooManyCandidates,
}

/// The candidates of a fragment, each tied to its media section (by mid and index) and to the
/// ICE username fragment it belongs to.
pub fn parse_sdpfrag(body: &[u8]) -> Result<Vec<RTCIceCandidateInit>, TrickleError> {
    let text = std::str::from_utf8(body).map_err(|_| TrickleError::NotUtf8)?;
    let mut ufrag: Option<String> = None;
    let mut mline: Option<u16> = None;
    let mut mid: Option<String> = None;
    let mut candidates = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' {
            return Err(TrickleError::BadLine(number + 1));
        }
        if line.starts_with("m=") {
            mline = Some(mline.map_or(0, |i| i.saturating_add(1)));
            mid = None;
        } else if let Some(value) = line.strip_prefix("a=ice-ufrag:") {
            ufrag = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("a=candidate:") {
            if candidates.len() == MAX_CANDIDATES {
                return Err(TrickleError::TooManyCandidates);
            }
            candidates.push(RTCIceCandidateInit {
                candidate: format!("candidate:{value}"),
                sdp_mid: mid.clone(),
                sdp_mline_index: mline,
                username_fragment: ufrag.clone(),
                ..Default::default()
            });
        }
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_candidates_with_their_section_and_ufrag() {
        let body = b"a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\na=end-of-candidates\r\n";
        let candidates = parse_sdpfrag(body).expect("valid fragment");
        assert_eq!(candidates.len(), 1);
        let c = &candidates[0];
        assert!(c.candidate.starts_with("candidate:1387637174 1 udp"));
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c.sdp_mline_index, Some(0));
        assert_eq!(c.username_fragment.as_deref(), Some("EsAw"));
    }

    #[test]
    fn refuses_garbage_binary_and_floods() {
        assert_eq!(parse_sdpfrag(b"hello world"), Err(TrickleError::BadLine(1)));
        assert_eq!(parse_sdpfrag(&[0xff, 0xfe, 0x00]), Err(TrickleError::NotUtf8));
        let flood = "a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n".repeat(MAX_CANDIDATES + 1);
        assert_eq!(parse_sdpfrag(flood.as_bytes()), Err(TrickleError::TooManyCandidates));
        assert_eq!(parse_sdpfrag(b""), Ok(vec![]));
    }
}
