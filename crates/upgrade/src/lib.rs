//! Work in progress: see the README of the workspace.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
