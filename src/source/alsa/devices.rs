//! What ALSA can capture from and play to, named the way `audio.device` takes them: every sound
//! card's PCM devices as `hw:CARD=…,DEV=…` (with the `plughw:` form for automatic conversion),
//! and the PCMs the ALSA configuration defines (`default`, `dsnoop:…`, …).

use super::AlsaError;
use alsa::Direction;
use alsa::card::Card;
use alsa::ctl::Ctl;
use alsa::device_name::HintIter;
use std::fmt::Write as _;

/// One PCM device of a sound card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPcm {
    /// `hw:CARD=<id>,DEV=<n>`: stable across reboots, unlike the card number.
    pub name: String,
    pub card_number: i32,
    pub card_id: String,
    pub card_name: String,
    pub device: u32,
    pub pcm_name: String,
    pub capture: bool,
    pub playback: bool,
}

/// A PCM from the ALSA configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredPcm {
    pub name: String,
    pub description: String,
    pub capture: bool,
    pub playback: bool,
}

/// Everything [`list`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlsaDevices {
    pub cards: Vec<CardPcm>,
    pub configured: Vec<ConfiguredPcm>,
}

/// Enumerates sound cards and configured PCMs. A card that cannot be queried (busy control
/// device, permissions) is skipped with a warning rather than hiding the others.
pub fn list() -> Result<AlsaDevices, AlsaError> {
    let mut devices = AlsaDevices::default();
    for card in alsa::card::Iter::new() {
        let card = card.map_err(AlsaError::List)?;
        if let Err(error) = add_card(&card, &mut devices.cards) {
            tracing::warn!(card = card.get_index(), %error, "cannot query sound card");
        }
    }
    for hint in HintIter::new_str(None, "pcm").map_err(AlsaError::List)? {
        let Some(name) = hint.name else { continue };
        // The hints repeat every card's devices under many plugin names; the card list above
        // already covers hardware, so keep the configuration's own entries.
        if name.starts_with("hw:") || name.starts_with("plughw:") || name == "null" {
            continue;
        }
        let description =
            hint.desc.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
        devices.configured.push(ConfiguredPcm {
            name,
            description,
            capture: hint.direction != Some(Direction::Playback),
            playback: hint.direction != Some(Direction::Capture),
        });
    }
    Ok(devices)
}

fn add_card(card: &Card, out: &mut Vec<CardPcm>) -> Result<(), alsa::Error> {
    let ctl = Ctl::from_card(card, false)?;
    let info = ctl.card_info()?;
    let card_id = info.get_id()?.to_owned();
    let card_name = info.get_name()?.to_owned();
    for device in alsa::ctl::DeviceIter::new(&ctl) {
        let Ok(device) = u32::try_from(device) else { continue };
        let pcm_info = |direction| ctl.pcm_info(device, 0, direction).ok();
        let (capture, playback) = (pcm_info(Direction::Capture), pcm_info(Direction::Playback));
        let pcm_name = capture
            .as_ref()
            .or(playback.as_ref())
            .and_then(|info| info.get_name().ok().map(str::to_owned))
            .unwrap_or_default();
        out.push(CardPcm {
            name: format!("hw:CARD={card_id},DEV={device}"),
            card_number: card.get_index(),
            card_id: card_id.clone(),
            card_name: card_name.clone(),
            device,
            pcm_name,
            capture: capture.is_some(),
            playback: playback.is_some(),
        });
    }
    Ok(())
}

fn directions(capture: bool, playback: bool) -> &'static str {
    match (capture, playback) {
        (true, true) => "capture+playback",
        (true, false) => "capture",
        (false, true) => "playback",
        (false, false) => "-",
    }
}

/// The listing as `camrtc devices` prints it.
pub fn format(devices: &AlsaDevices) -> String {
    let mut out =
        String::from("ALSA sound cards (audio.device = \"<name>\", or plughw:… for conversion)\n");
    if devices.cards.is_empty() {
        out.push_str("  (no sound cards)\n");
    }
    for pcm in &devices.cards {
        // Infallible: writing to a String.
        let _ = writeln!(
            out,
            "  {:<28} {:<17} card {} ({}): {}",
            pcm.name,
            directions(pcm.capture, pcm.playback),
            pcm.card_number,
            pcm.card_name,
            pcm.pcm_name,
        );
    }
    out.push_str("ALSA configured PCMs\n");
    if devices.configured.is_empty() {
        out.push_str("  (none)\n");
    }
    for pcm in &devices.configured {
        let _ = writeln!(
            out,
            "  {:<28} {:<17} {}",
            pcm.name,
            directions(pcm.capture, pcm.playback),
            pcm.description
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_devices_as_the_config_takes_them() {
        let devices = AlsaDevices {
            cards: vec![CardPcm {
                name: "hw:CARD=Loopback,DEV=1".into(),
                card_number: 0,
                card_id: "Loopback".into(),
                card_name: "Loopback".into(),
                device: 1,
                pcm_name: "Loopback PCM".into(),
                capture: true,
                playback: true,
            }],
            configured: vec![ConfiguredPcm {
                name: "default".into(),
                description: "Default ALSA Output".into(),
                capture: true,
                playback: false,
            }],
        };
        let text = format(&devices);
        assert!(
            text.contains(
                "  hw:CARD=Loopback,DEV=1       capture+playback  card 0 (Loopback): Loopback PCM\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  default                      capture           Default ALSA Output\n"),
            "{text}"
        );
        let empty = format(&AlsaDevices::default());
        assert!(empty.contains("(no sound cards)") && empty.contains("(none)"), "{empty}");
    }

    #[test]
    fn listing_works_without_sound_cards() {
        // Build machines usually have no card; listing must still succeed (configured PCMs only).
        let devices = list().expect("ALSA configuration is readable");
        assert!(devices.configured.iter().all(|pcm| !pcm.name.is_empty()));
    }
}
