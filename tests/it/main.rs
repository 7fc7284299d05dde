//! Integration tests: the real gateway on port 0 in front of the stand-in
//! PBX on port 0, asserting on what the PBX actually received.

mod actions;
mod answers;
mod browser;
mod api;
mod calls;
mod cli;
mod cors;
mod dolibarr;
mod dial_log;
mod events_in;
mod failures;
mod helpers;
mod hooks;
mod hostile;
mod keys;
mod layers;
mod limits;
mod login;
mod login_presets;
mod metrics;
mod numbers;
mod once;
mod presets;
mod openapi;
mod pages;
mod presets_misc;
mod presets_phones;
mod real_baresip;
mod reload;
mod seed_verbs;
mod serve;
mod sockets;
mod sse;
mod systems;
mod tls_auth;
