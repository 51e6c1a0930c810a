//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while building a reference guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "No Debian mirror configured: pass --mirror URL or set RIVET_DEBIAN_MIRROR=URL \
         (the root of a Debian archive, its path ending in /debian)"
    )]
    NoMirror,
    #[error("Unsupported mirror URL {0:?}: use http://, https:// or file://")]
    BadUrl(String),
    #[error("No cache directory: set XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("Download of {url} failed")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{url} is not on the mirror")]
    NotFound { url: String },
    #[error("Reading {url} failed")]
    Transfer {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Checksum mismatch for {what}: expected SHA-256 {expected}, got {actual}")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{what} matches InRelease in no compression (the mirror may be mid-sync: \
         try again later or use another mirror); tried {tried}"
    )]
    IndexMismatch { what: String, tried: String },
    #[error("{release} lists no SHA256 entry for {path}")]
    NotInRelease { release: String, path: String },
    #[error("Malformed {what} at line {line}: {reason}")]
    Parse {
        what: String,
        line: usize,
        reason: String,
    },
    #[error("Malformed {what}: {reason}")]
    Format { what: String, reason: String },
    #[error("Reading {what} failed")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Package {0} is not in the index")]
    MissingPackage(String),
    #[error("{file} not found in {package}")]
    MissingFile { package: String, file: String },
    #[error("Shared library {lib} needed by {by} is in no package of the closure")]
    MissingLibrary { lib: String, by: String },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn parse(what: &str, line: usize, reason: impl Into<String>) -> Self {
        Error::Parse {
            what: what.to_string(),
            line,
            reason: reason.into(),
        }
    }

    /// True when the error came from reaching the mirror (as opposed to bad data
    /// or a local problem), so a cached guest may stand in.
    pub fn is_network(&self) -> bool {
        matches!(self, Error::Http { .. } | Error::Transfer { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
