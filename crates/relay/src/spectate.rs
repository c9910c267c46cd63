//! The ATTACH_SPECTATE payload: replay lines (u32), most spectators (u32), label length (u16),
//! label, instance id; numbers big-endian, text UTF-8.

use backends::{MAX_SPECTATOR_LABEL, SpectateRequest};

use crate::frame::clip;

pub(crate) fn encode(req: &SpectateRequest, instance: &str) -> Vec<u8> {
    let who = clip(&req.who, MAX_SPECTATOR_LABEL);
    let mut payload = Vec::with_capacity(10 + who.len() + instance.len());
    payload.extend_from_slice(&req.replay_lines.to_be_bytes());
    payload.extend_from_slice(&req.max.to_be_bytes());
    // At most MAX_SPECTATOR_LABEL bytes: fits a u16.
    payload.extend_from_slice(&u16::try_from(who.len()).unwrap_or(0).to_be_bytes());
    payload.extend_from_slice(who.as_bytes());
    payload.extend_from_slice(instance.as_bytes());
    payload
}

/// The request and the instance id; `None` for a malformed payload.
pub(crate) fn decode(payload: &[u8]) -> Option<(SpectateRequest, String)> {
    let (replay, rest) = payload.split_first_chunk::<4>()?;
    let (max, rest) = rest.split_first_chunk::<4>()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len > MAX_SPECTATOR_LABEL || rest.len() < len {
        return None;
    }
    let (who, instance) = rest.split_at(len);
    let req = SpectateRequest {
        replay_lines: u32::from_be_bytes(*replay),
        max: u32::from_be_bytes(*max),
        who: std::str::from_utf8(who).ok()?.to_owned(),
    };
    Some((req, std::str::from_utf8(instance).ok()?.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        let req = SpectateRequest {
            replay_lines: 50,
            who: "arn:aws:iam::111122223333:user/bob".to_owned(),
            max: 8,
        };
        let payload = encode(&req, "i-0123456789abcdef0");
        let (back, instance) = decode(&payload).unwrap();
        assert_eq!(instance, "i-0123456789abcdef0");
        assert_eq!((back.replay_lines, back.max, back.who), (50, 8, req.who));
        for cut in 0..10 {
            assert!(decode(&payload[..cut]).is_none(), "{cut}");
        }
        let mut long = payload.clone();
        long[8..10].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(decode(&long).is_none());
    }
}
