//! The STS reply readers (`AssumeRoleWithWebIdentityResponse` and error documents) on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Replies are read as text first; a body that is not UTF-8 never reaches the parsers.
    if let Ok(xml) = std::str::from_utf8(data) {
        ssofs::fuzzing::sts_reply(xml);
    }
});
