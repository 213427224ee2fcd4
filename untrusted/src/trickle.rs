//! Parsing WHEP PATCH bodies: `application/trickle-ice-sdpfrag` (RFC 8840).

use crate::restart::IceCredentials;

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
    /// `a=ice-ufrag` without `a=ice-pwd` or the other way round: half a restart.
    #[error("the SDP fragment carries only one of a=ice-ufrag and a=ice-pwd")]
    HalfCredentials,
}

/// One trickled candidate, with the media section (mid and index) and the ICE generation
/// (username fragment) it belongs to: what the webrtc crate's `RTCIceCandidateInit` carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrickledCandidate {
    /// The candidate-attribute, `candidate:…` (RFC 8839 §5.1).
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
    pub username_fragment: Option<String>,
}

/// What a PATCH body says: the viewer's ICE credentials (new ones ask for an ICE restart) and
/// candidates, each tied to its media section (by mid and index) and to its username fragment.
#[derive(Debug, Default, PartialEq)]
pub struct Fragment {
    pub credentials: Option<IceCredentials>,
    pub candidates: Vec<TrickledCandidate>,
    /// `a=end-of-candidates`: the viewer has gathered everything.
    pub end_of_candidates: bool,
}

pub fn parse_sdpfrag(body: &[u8]) -> Result<Fragment, TrickleError> {
    let text = std::str::from_utf8(body).map_err(|_| TrickleError::NotUtf8)?;
    let mut ufrag: Option<String> = None;
    let mut pwd: Option<String> = None;
    let mut mline: Option<u16> = None;
    let mut mid: Option<String> = None;
    let mut fragment = Fragment::default();
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
        } else if let Some(value) = line.strip_prefix("a=ice-pwd:") {
            pwd = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value.to_owned());
        } else if line == "a=end-of-candidates" {
            fragment.end_of_candidates = true;
        } else if let Some(value) = line.strip_prefix("a=candidate:") {
            if fragment.candidates.len() == MAX_CANDIDATES {
                return Err(TrickleError::TooManyCandidates);
            }
            fragment.candidates.push(TrickledCandidate {
                candidate: format!("candidate:{value}"),
                sdp_mid: mid.clone(),
                sdp_mline_index: mline,
                username_fragment: ufrag.clone(),
            });
        }
    }
    fragment.credentials = match (ufrag, pwd) {
        (Some(ufrag), Some(pwd)) => Some(IceCredentials { ufrag, pwd }),
        (None, None) => None,
        // A ufrag alone is how RFC 8840 ties candidates to a generation; that is no restart.
        (Some(_), None) => None,
        (None, Some(_)) => return Err(TrickleError::HalfCredentials),
    };
    Ok(fragment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_candidates_with_their_section_and_ufrag() {
        let body = b"a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\na=end-of-candidates\r\n";
        let fragment = parse_sdpfrag(body).expect("valid fragment");
        assert_eq!(fragment.candidates.len(), 1);
        assert!(fragment.end_of_candidates);
        let credentials = fragment.credentials.as_ref().expect("ufrag and pwd");
        assert_eq!(
            (credentials.ufrag.as_str(), credentials.pwd.as_str()),
            ("EsAw", "P2uYro0UCOQ4zxjKXaWCBui1")
        );
        let c = &fragment.candidates[0];
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
        assert_eq!(parse_sdpfrag(b""), Ok(Fragment::default()));
        assert_eq!(parse_sdpfrag(b"a=ice-pwd:x\r\n"), Err(TrickleError::HalfCredentials));
        let ufrag_only = parse_sdpfrag(b"a=ice-ufrag:x\r\na=end-of-candidates\r\n").expect("valid");
        assert_eq!(ufrag_only.credentials, None);
        assert!(ufrag_only.end_of_candidates);
    }
}
