//! One module per command.

pub mod api;
pub mod cache;
pub mod completions;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod emulator;
pub mod paginate;
pub mod regions;
pub mod revoke;
pub mod serve;
pub mod token;
pub mod verify;
