//! The one-line syntaxes admins paste into profiles.

pub mod iqx;
