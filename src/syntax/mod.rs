//! The one-line syntaxes admins paste into profiles: IQX's dial line,
//! Dolibarr's click-to-dial URL mask, and VOIspeed Integra's event command
//! (a hook's URL).

pub mod dolibarr;
pub mod integra;
pub mod iqx;
