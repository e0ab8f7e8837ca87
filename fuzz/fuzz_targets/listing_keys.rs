//! One directory's entries from a hostile listing. Input: lines; the first is the listed prefix,
//! each other line adds to the server's answer by its first character:
//! `f` key = prefix + rest, `F` key = rest, `d` common prefix = prefix + rest, `D` common prefix = rest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let prefix = lines.next().unwrap_or_default();
    let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
    for line in lines {
        let mut chars = line.chars();
        let (Some(tag), rest) = (chars.next(), chars.as_str()) else { continue };
        match tag {
            'f' => keys.push(format!("{prefix}{rest}")),
            'F' => keys.push(rest.to_string()),
            'd' => prefixes.push(format!("{prefix}{rest}")),
            'D' => prefixes.push(rest.to_string()),
            _ => {}
        }
    }
    ssofs::fuzzing::listing(prefix, &keys, &prefixes);
});
