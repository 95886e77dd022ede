//! Where uploaded files' bytes live: a [`FileStore`], content-addressed by SHA-256.
//!
//! The key of a file is derived only from its checksum (`ab/cdef…`, 2 + 62 hex characters), never
//! from anything a client names, so no upload can reach outside the store; [`is_key`] re-checks a
//! key read back from the database before it becomes a path. Identical uploads share one copy.
//! [`LocalFileStore`] keeps files under `{NOX_FILE_STORE or NOX_DATA_DIR/files}`; an
//! S3-compatible store would implement the same trait (staging stays local: an upload is hashed
//! while it streams to disk, and only then does its key exist).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures_util::future::BoxFuture;
use tokio::io::AsyncRead;

/// The stored content of a key, ready to stream.
pub struct StoredContent {
    pub len: u64,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

pub trait FileStore: Send + Sync {
    /// A local directory where uploads are written while they stream in.
    fn staging_dir(&self) -> &Path;

    /// Takes a fully written staged file whose SHA-256 is `sha256_hex` into the store and returns
    /// its key. Idempotent: the same content always has the same key. The staged file is consumed.
    fn put<'a>(
        &'a self,
        staged: &'a Path,
        sha256_hex: &'a str,
    ) -> BoxFuture<'a, io::Result<String>>;

    /// The content under `key`, or `None` when the store has no such key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<StoredContent>>>;
}

/// `ab/` + 62 lowercase hex characters.
pub fn key_for(sha256_hex: &str) -> Option<String> {
    let valid = sha256_hex.len() == 64
        && sha256_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    valid.then(|| format!("{}/{}", &sha256_hex[..2], &sha256_hex[2..]))
}

/// Whether `key` has exactly the shape [`key_for`] produces (so it is a safe relative path).
pub fn is_key(key: &str) -> bool {
    key.len() == 65
        && key.as_bytes()[2] == b'/'
        && key_for(&key.replacen('/', "", 1)).as_deref() == Some(key)
}

/// Files on the local disk: `{root}/ab/cdef…`, staged in `{root}/tmp/`.
pub struct LocalFileStore {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalFileStore {
    /// Creates the store's directories.
    pub fn open(root: PathBuf) -> io::Result<Self> {
        let staging = root.join("tmp");
        std::fs::create_dir_all(&staging)?;
        Ok(Self { root, staging })
    }
}

impl FileStore for LocalFileStore {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn put<'a>(
        &'a self,
        staged: &'a Path,
        sha256_hex: &'a str,
    ) -> BoxFuture<'a, io::Result<String>> {
        Box::pin(async move {
            let key = key_for(sha256_hex)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a sha-256"))?;
            let target = self.root.join(&key);
            if let Some(dir) = target.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            if tokio::fs::try_exists(&target).await? {
                // Same checksum, same bytes: keep the copy we have.
                tokio::fs::remove_file(staged).await?;
            } else {
                // Same file system (staging is inside the root): the rename is atomic, so a
                // reader never sees a half-written file under a key.
                tokio::fs::rename(staged, &target).await?;
            }
            Ok(key)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<StoredContent>>> {
        Box::pin(async move {
            if !is_key(key) {
                return Ok(None);
            }
            match tokio::fs::File::open(self.root.join(key)).await {
                Ok(file) => {
                    let len = file.metadata().await?.len();
                    Ok(Some(StoredContent {
                        len,
                        reader: Box::pin(file),
                    }))
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err),
            }
        })
    }
}

/// The content type of a file, read from its first bytes (magic numbers), never from what the
/// client said. Text is UTF-8 without NUL; anything unrecognised is `application/octet-stream`.
pub fn sniff_content_type(head: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"OggS", "audio/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"\x1aE\xdf\xa3", "video/webm"),
    ];
    if let Some((_, mime)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return mime;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp";
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    if is_text(head) {
        return "text/plain; charset=utf-8";
    }
    "application/octet-stream"
}

/// UTF-8 without NUL, allowing a character cut off at the end of the sniffed prefix.
fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none() && head.len() - err.valid_up_to() < 4,
    }
}

/// A file name safe to store and to show: the last path component of what the client sent,
/// without control characters, at most 255 characters; `file` when nothing is left.
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect::<String>()
        .trim()
        .to_string();
    match cleaned.as_str() {
        "" | "." | ".." => "file".to_string(),
        _ => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn keys_come_only_from_checksums() {
        assert_eq!(key_for(SHA).as_deref(), Some(&*format!("9f/{}", &SHA[2..])));
        assert!(key_for("../../etc/passwd").is_none());
        assert!(key_for(&SHA.to_uppercase()).is_none());
        assert!(is_key(&format!("9f/{}", &SHA[2..])));
        for bad in [
            "../x",
            "9f/../../etc/passwd",
            "",
            SHA,
            &format!("/9/{}", &SHA[2..]),
        ] {
            assert!(!is_key(bad), "{bad}");
        }
    }

    #[test]
    fn content_types_are_sniffed() {
        assert_eq!(sniff_content_type(b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(sniff_content_type(b"%PDF-1.7"), "application/pdf");
        assert_eq!(
            sniff_content_type("héllo".as_bytes()),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"MZ\x90\x00"),
            "application/octet-stream"
        );
        // A cut multi-byte character at the end of the prefix is still text.
        assert_eq!(
            sniff_content_type(&"é".as_bytes()[..1]),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("a\r\nb.txt"), "ab.txt");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name(&"x".repeat(300)).len(), 255);
    }

    #[tokio::test]
    async fn the_local_store_moves_staged_files_under_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalFileStore::open(dir.path().to_path_buf()).expect("store");
        for _ in 0..2 {
            let staged = store.staging_dir().join("upload.part");
            tokio::fs::write(&staged, b"test").await.expect("write");
            let key = store.put(&staged, SHA).await.expect("put");
            assert_eq!(key, format!("9f/{}", &SHA[2..]));
            assert!(!staged.exists(), "the staged file is consumed");
        }
        let mut content = store
            .get(&format!("9f/{}", &SHA[2..]))
            .await
            .expect("get")
            .expect("some");
        let mut read = Vec::new();
        content.reader.read_to_end(&mut read).await.expect("read");
        assert_eq!((content.len, read.as_slice()), (4, &b"test"[..]));
        assert!(store.get("../escape").await.expect("get").is_none());
    }
}
