//! One module per command.

pub mod emulator;
