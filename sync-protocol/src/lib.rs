//! Pure Nox Sync logic.
