//! Turning alerts into chat messages and getting them delivered.

pub mod discord;
pub mod slack;
pub mod text;
