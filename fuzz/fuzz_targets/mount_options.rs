//! Mount option parsing (`-o` groups, fstab options) on any text: one group per line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let groups: Vec<String> = text.split('\n').map(str::to_string).collect();
    let _ = ssofs::mount::options::parse(&groups);
});
