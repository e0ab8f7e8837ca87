//! What one block file holds: a header naming the block in full (scope, identity, bucket, key, ETag,
//! block number, length) and a CRC-32 over the header and the data, then the data. A file is served
//! only if all of it checks: a block torn by a crash, cut short by a full disk or left by an older
//! ssofs fails here and is never served. The name (a hash of the same fields) finds the file; the
//! header proves it is that block.
//!
//! CRC-32 (crc32fast, SIMD) and not a cryptographic hash: the threat is a crash, not an attacker (the
//! directory is private to the mount's owner), and at ~10 GB/s it adds well under a millisecond per
//! 1 MiB block on a read from disk.

use bytes::Bytes;
use sha2::Digest;

use super::super::BlockKey;

const MAGIC: &[u8; 8] = b"ssofsBK1";
/// Magic and CRC, before the checked part.
const PREFIX: usize = 12;
/// The largest block stored; larger ones are not cached on disk (blocks are 1 MiB).
pub const MAX_DATA: u64 = 64 << 20;
/// The largest header: four strings (an S3 key is at most 1024 bytes) and the numbers.
pub const MAX_HEADER: u64 = 16 << 10;
/// Block files end in this; anything else in the directory is garbage or a temporary file.
pub const SUFFIX: &str = ".blk";
pub const TMP_SUFFIX: &str = ".tmp";

/// A block's file name without its suffix: the SHA-256 of everything that identifies it.
pub type Name = [u8; 32];

pub fn name(scope: &str, key: &BlockKey) -> Name {
    let mut h = sha2::Sha256::new();
    for part in [scope.as_bytes(), key.bucket.as_bytes(), key.key.as_bytes(), key.etag.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(key.identity.to_le_bytes());
    h.update(key.block.to_le_bytes());
    h.finalize().into()
}

pub fn file_name(name: &Name, suffix: &str) -> String {
    format!("{}{suffix}", hex::encode(name))
}

/// The 64 hex digits of a block file's name, if `file` is one.
pub fn parse_file_name(file: &str) -> Option<Name> {
    let hex = file.strip_suffix(SUFFIX)?;
    let mut name = [0u8; 32];
    hex::decode_to_slice(hex, &mut name).ok()?;
    Some(name)
}

/// The checked part of the header: everything that identifies the block, and the data's length.
fn fields(scope: &str, key: &BlockKey, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + scope.len() + key.bucket.len() + key.key.len() + key.etag.len());
    for part in [scope.as_bytes(), key.bucket.as_bytes(), key.key.as_bytes(), key.etag.as_bytes()] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&key.identity.to_le_bytes());
    out.extend_from_slice(&key.block.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// The bytes to write before `data`.
pub fn header(scope: &str, key: &BlockKey, data: &[u8]) -> Vec<u8> {
    let fields = fields(scope, key, data.len() as u64);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&fields);
    crc.update(data);
    let mut out = Vec::with_capacity(PREFIX + fields.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&fields);
    out
}

/// Why a block file is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// Not a block file of this format (an older one, or not ours).
    Format,
    /// Another block's file (a hash collision, or a file renamed by hand).
    OtherBlock,
    /// Torn, cut short or altered: the checksum or length does not match.
    Checksum,
}

/// The data of `file` if it is `key`'s block, whole.
pub fn decode(file: Vec<u8>, scope: &str, key: &BlockKey) -> Result<Bytes, Bad> {
    if file.len() < PREFIX || &file[..8] != MAGIC {
        return Err(Bad::Format);
    }
    let stored = u32::from_le_bytes(file[8..12].try_into().expect("4 bytes"));
    if crc32fast::hash(&file[PREFIX..]) != stored {
        return Err(Bad::Checksum);
    }
    // With the checksum right, the file is as it was written: the header is ours and whole, and
    // only the block it names is left to compare.
    let want = fields(scope, key, 0);
    let len_at = PREFIX + want.len() - 8;
    if file.len() < len_at + 8 || file[PREFIX..len_at] != want[..want.len() - 8] {
        return Err(Bad::OtherBlock);
    }
    let len = u64::from_le_bytes(file[len_at..len_at + 8].try_into().expect("8 bytes"));
    let start = len_at + 8;
    if (file.len() - start) as u64 != len {
        return Err(Bad::Checksum);
    }
    Ok(Bytes::from(file).slice(start..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BlockKey {
        BlockKey { identity: 7, bucket: "b".into(), key: "dir/k".into(), etag: "\"e\"".into(), block: 3 }
    }

    fn encoded(data: &[u8]) -> Vec<u8> {
        let mut f = header("p\nhttp://s3", &key(), data);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn a_whole_block_file_gives_back_its_data() {
        let data = vec![5u8; 1000];
        assert_eq!(decode(encoded(&data), "p\nhttp://s3", &key()).unwrap().as_ref(), &data[..]);
    }

    #[test]
    fn a_torn_or_flipped_file_is_refused() {
        let whole = encoded(&[5u8; 1000]);
        for cut in [0, 5, 12, 40, whole.len() - 1] {
            let err = decode(whole[..cut].to_vec(), "p\nhttp://s3", &key()).unwrap_err();
            assert!(matches!(err, Bad::Checksum | Bad::Format), "cut at {cut}: {err:?}");
        }
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode(flipped, "p\nhttp://s3", &key()), Err(Bad::Checksum));
        let mut longer = whole;
        longer.push(0);
        assert_eq!(decode(longer, "p\nhttp://s3", &key()), Err(Bad::Checksum));
    }

    #[test]
    fn another_block_scope_or_identity_is_refused() {
        let f = encoded(b"data");
        assert_eq!(decode(f.clone(), "other\nhttp://s3", &key()), Err(Bad::OtherBlock));
        assert_eq!(decode(f.clone(), "p\nhttp://s3", &BlockKey { identity: 8, ..key() }), Err(Bad::OtherBlock));
        assert_eq!(decode(f, "p\nhttp://s3", &BlockKey { etag: "\"f\"".into(), ..key() }), Err(Bad::OtherBlock));
        assert_ne!(name("p", &key()), name("q", &key()));
        assert_ne!(name("p", &key()), name("p", &BlockKey { block: 4, ..key() }));
    }

    #[test]
    fn only_block_file_names_parse() {
        let n = name("p", &key());
        assert_eq!(parse_file_name(&file_name(&n, SUFFIX)), Some(n));
        assert_eq!(parse_file_name(&file_name(&n, TMP_SUFFIX)), None);
        assert_eq!(parse_file_name("lock"), None);
        assert_eq!(parse_file_name(&hex::encode(n)), None, "the previous format's names");
    }
}
