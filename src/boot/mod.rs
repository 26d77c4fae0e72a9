//! Start-up steps, each its own module so each can be tested alone.

pub mod dirs;
pub mod limits;
