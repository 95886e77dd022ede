//! Collaboration rows: comments on canvases, notes, chat rooms and messages, files and their
//! attachments (issue 16). Every function is scoped by the workspace, project or organization the
//! server has authorized, so a foreign id is not found.

pub mod chat;
pub mod comments;
pub mod files;
pub mod notes;
