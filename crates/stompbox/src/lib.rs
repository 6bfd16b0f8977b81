//! Work in progress: see the README of the workspace.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
