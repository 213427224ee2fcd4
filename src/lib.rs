//! camrtc: capture a camera and a microphone, encode once, stream to every browser over WebRTC.
//!
//! Data flows one way: sources → encoders → hub → peers, with `http` and `config` at the edges.

pub use camrtc_untrusted::{auth, config, state_file};

pub mod app;
pub mod echo;
pub mod encode;
pub mod events;
pub mod http;
pub mod hub;
pub mod ice;
pub mod media;
pub mod peer;
pub mod pipeline;
pub mod privacy;
pub mod ratelimit;
pub mod sessions;
pub mod snapshot;
pub mod source;
pub mod systemd;
pub mod talkback;
