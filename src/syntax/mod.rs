//! The one-line syntaxes admins paste into profiles: IQX's dial line and
//! VOIspeed Integra's event command (a hook's URL).

pub mod integra;
pub mod iqx;
