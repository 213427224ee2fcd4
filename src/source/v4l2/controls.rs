//! `[video.controls]`: V4L2 controls by name, checked against what the camera has.

use crate::config::ControlValue;
use std::collections::BTreeMap;

/// What kind of value a control takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlKind {
    Integer {
        min: i64,
        max: i64,
    },
    Boolean,
    /// Menu entries by index and name.
    Menu(Vec<(u32, String)>),
    /// Buttons, strings, compound controls: not settable from the config.
    Other,
}

/// One control as the camera describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlInfo {
    pub id: u32,
    /// The config name: the driver's name in lower case with `_` between words, as `v4l2-ctl`
    /// shows it ("Power Line Frequency" is `power_line_frequency`).
    pub key: String,
    pub kind: ControlKind,
}

/// The config name of a control the driver calls `name`.
pub fn control_key(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Turns the configured controls into (id, value) pairs, or says what is wrong with the first
/// bad one: an unknown name (listing the valid ones), a value out of range, a menu entry the
/// control does not have.
pub fn resolve(
    wanted: &BTreeMap<String, ControlValue>,
    available: &[ControlInfo],
) -> Result<Vec<(u32, i64)>, String> {
    wanted
        .iter()
        .map(|(name, value)| {
            let key = format!("video.controls.{name}");
            let Some(control) = available.iter().find(|c| c.key == control_key(name)) else {
                let settable: Vec<&str> = available
                    .iter()
                    .filter(|c| c.kind != ControlKind::Other)
                    .map(|c| c.key.as_str())
                    .collect();
                return Err(format!(
                    "{key}: the camera has no such control; it has: {}",
                    if settable.is_empty() { "none".to_owned() } else { settable.join(", ") }
                ));
            };
            let number = match (&control.kind, value) {
                (ControlKind::Boolean, ControlValue::Bool(b)) => i64::from(*b),
                (ControlKind::Boolean, ControlValue::Int(n @ (0 | 1))) => *n,
                (ControlKind::Boolean, _) => return Err(format!("{key} must be true or false")),
                (ControlKind::Integer { min, max }, ControlValue::Int(n)) => {
                    if !(min..=max).contains(&n) {
                        return Err(format!("{key} = {n} must be between {min} and {max}"));
                    }
                    *n
                }
                (ControlKind::Integer { min, max }, _) => {
                    return Err(format!("{key} must be a number from {min} to {max}"));
                }
                (ControlKind::Menu(items), value) => {
                    let found = items.iter().find(|(index, label)| match value {
                        ControlValue::Int(n) => i64::from(*index) == *n,
                        ControlValue::Menu(text) => label.eq_ignore_ascii_case(text.trim()),
                        ControlValue::Bool(_) => false,
                    });
                    match found {
                        Some((index, _)) => i64::from(*index),
                        None => {
                            let choices: Vec<String> =
                                items.iter().map(|(i, l)| format!("{i} ({l:?})")).collect();
                            return Err(format!("{key} must be one of {}", choices.join(", ")));
                        }
                    }
                }
                (ControlKind::Other, _) => {
                    return Err(format!(
                        "{key}: this kind of control cannot be set from the config"
                    ));
                }
            };
            Ok((control.id, number))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> Vec<ControlInfo> {
        vec![
            ControlInfo {
                id: 1,
                key: control_key("Brightness"),
                kind: ControlKind::Integer { min: 0, max: 255 },
            },
            ControlInfo {
                id: 2,
                key: control_key("White Balance, Automatic"),
                kind: ControlKind::Boolean,
            },
            ControlInfo {
                id: 3,
                key: control_key("Power Line Frequency"),
                kind: ControlKind::Menu(vec![
                    (0, "Disabled".into()),
                    (1, "50 Hz".into()),
                    (2, "60 Hz".into()),
                ]),
            },
            ControlInfo { id: 4, key: control_key("Disconnect"), kind: ControlKind::Other },
        ]
    }

    fn wanted(pairs: &[(&str, ControlValue)]) -> BTreeMap<String, ControlValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn names_follow_v4l2_ctl() {
        assert_eq!(control_key("White Balance, Automatic"), "white_balance_automatic");
        assert_eq!(control_key("Exposure Time, Absolute"), "exposure_time_absolute");
        assert_eq!(control_key("  Gain "), "gain");
    }

    #[test]
    fn values_resolve_by_number_switch_or_menu_name() {
        let resolved = resolve(
            &wanted(&[
                ("brightness", ControlValue::Int(140)),
                ("white_balance_automatic", ControlValue::Bool(false)),
                ("power_line_frequency", ControlValue::Menu("50 hz".into())),
            ]),
            &camera(),
        );
        assert_eq!(resolved, Ok(vec![(1, 140), (3, 1), (2, 0)]));
        let by_index =
            resolve(&wanted(&[("power_line_frequency", ControlValue::Int(2))]), &camera());
        assert_eq!(by_index, Ok(vec![(3, 2)]));
    }

    #[test]
    fn errors_name_the_control_and_what_would_work() {
        let error =
            |pairs: &[(&str, ControlValue)]| resolve(&wanted(pairs), &camera()).unwrap_err();
        let message = error(&[("brightnes", ControlValue::Int(1))]);
        assert!(message.starts_with("video.controls.brightnes: the camera has no such control"));
        assert!(
            message.ends_with("brightness, white_balance_automatic, power_line_frequency"),
            "lists settable controls: {message}"
        );
        assert_eq!(
            error(&[("brightness", ControlValue::Int(300))]),
            "video.controls.brightness = 300 must be between 0 and 255"
        );
        assert!(
            error(&[("power_line_frequency", ControlValue::Menu("55 Hz".into()))])
                .contains("must be one of 0 (\"Disabled\"), 1 (\"50 Hz\"), 2 (\"60 Hz\")")
        );
        assert!(
            error(&[("white_balance_automatic", ControlValue::Int(5))]).contains("true or false")
        );
        assert!(error(&[("disconnect", ControlValue::Bool(true))]).contains("cannot be set"));
    }
}
