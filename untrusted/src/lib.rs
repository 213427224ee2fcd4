//! The parts of camrtc that read untrusted input, each pure and total: any input yields a value
//! or a typed error naming what was wrong, never a panic. Fuzzed by fuzz/.

pub mod auth;
pub mod config;
pub mod restart;
pub mod sdp;
pub mod state_file;
pub mod trickle;
