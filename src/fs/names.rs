//! Which S3 key segments can be file names, and the suffix that keeps a key reachable when it is
//! both an object and a prefix.

/// A key that is both an object (`a`) and a prefix (`a/...`) shows as directory `a`; the object stays
/// reachable as file `a` + this suffix.
pub const SHADOWED_OBJECT_SUFFIX: &str = ".s3object";

/// Longest file name Linux accepts.
const NAME_MAX: usize = 255;

/// Whether a key segment can be shown as a file name. Empty segments (`a//b`), `.`, `..`, names with
/// NUL and names longer than 255 bytes cannot.
pub fn usable(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && name.len() <= NAME_MAX && !name.contains('\0')
}

/// Whether a name the user asked to create can become a key segment.
pub fn creatable(name: &str) -> Result<(), String> {
    if !usable(name) {
        return Err(format!("{name:?} cannot be a file name"));
    }
    if name.contains('/') {
        return Err(format!("{name:?} contains '/'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_segments_are_not_names() {
        for bad in ["", ".", "..", &"x".repeat(256), "a\0b"] {
            assert!(!usable(bad), "{bad:?}");
        }
        for good in ["a", "a b", "ü", "%", "+", "\\", "x".repeat(255).as_str()] {
            assert!(usable(good), "{good:?}");
        }
    }
}
