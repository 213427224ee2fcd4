//! Where the openh264 code comes from. Default build (`openh264-source`): compiled from the
//! bundled source into the binary. `cisco-openh264` build: Cisco's prebuilt library, loaded at
//! run time. Only Cisco's own binaries are covered by Cisco's H.264 patent licence, which is why a
//! distributor may prefer to ship without an encoder and let the device fetch Cisco's (README,
//! "H.264 and patents").

use super::EncodeError;
use openh264::OpenH264API;

/// Overrides where the Cisco build looks for the library.
#[cfg(feature = "cisco-openh264")]
pub const LIBRARY_ENV: &str = "CAMRTC_OPENH264_LIBRARY";
/// Where the Cisco build looks for the library by default.
#[cfg(feature = "cisco-openh264")]
pub const DEFAULT_LIBRARY: &str = "/usr/local/lib/camrtc/libopenh264.so";

#[cfg(feature = "openh264-source")]
pub fn api() -> Result<OpenH264API, EncodeError> {
    Ok(OpenH264API::from_source())
}

#[cfg(all(feature = "cisco-openh264", not(feature = "openh264-source")))]
pub fn api() -> Result<OpenH264API, EncodeError> {
    let path = std::env::var_os(LIBRARY_ENV).unwrap_or_else(|| DEFAULT_LIBRARY.into());
    // from_blob_path loads only files whose SHA-256 is one of Cisco's published 2.6.0 builds.
    OpenH264API::from_blob_path(&path).map_err(|error| EncodeError::Library {
        path: std::path::PathBuf::from(path),
        reason: error.to_string(),
    })
}

#[cfg(not(any(feature = "openh264-source", feature = "cisco-openh264")))]
compile_error!("enable one of the features openh264-source (default) or cisco-openh264");

#[cfg(all(test, feature = "cisco-openh264", not(feature = "openh264-source")))]
mod tests {
    #[test]
    fn a_missing_library_is_a_clear_error() {
        // Safety: single-threaded at this point of this test; no other test reads this variable.
        unsafe { std::env::set_var(super::LIBRARY_ENV, "/nonexistent/libopenh264.so") };
        let message = super::api().err().expect("no library there").to_string();
        assert!(message.contains("/nonexistent/libopenh264.so"), "{message}");
    }
}
