//! Integration tests: the real gateway on port 0 in front of the stand-in
//! PBX on port 0, asserting on what the PBX actually received.

mod api;
mod cli;
mod failures;
mod helpers;
mod safety;
mod serve;
mod systems;
