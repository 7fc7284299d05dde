//! The starter profile `webdial new BRANCH --preset NAME` writes: the
//! preset extended, every variable it needs as a placeholder with what the
//! preset's header says about it, secrets as `${BRANCH_NAME}` references,
//! the preset's defaults commented out. Its contract: once every
//! [`PLACEHOLDER`] is replaced and every `${…}` named is set in the
//! environment, `webdial check` accepts it; until then, check refuses it
//! and names each placeholder left.

use serde_json::Value;

use super::introspect::{PLACEHOLDER, Preset, STARTER_DIAL, Variable};

/// The environment variable a branch's secret is suggested under:
/// `BRANCH_VAR`, upper case, anything but letters and digits as `_`.
pub fn env_name(branch: &str, var: &str) -> String {
    let name: String = format!("{branch}_{var}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) { format!("_{name}") } else { name }
}

/// The environment variables the starter for `branch` reads (its secrets).
pub fn env_names(preset: &Preset, branch: &str) -> Vec<String> {
    preset.required.iter().filter(|v| v.secret && !v.map).map(|v| env_name(branch, &v.name)).collect()
}

/// The starter file's text for `branch` on `preset`.
pub fn starter(preset: &Preset, branch: &str) -> String {
    let mut out = String::new();
    let what = preset.summary.as_deref().unwrap_or("a branch");
    let title = format!("# {branch}: {what}");
    let file = format!("(presets/{}.yaml).", preset.name);
    match title.len() + file.len() < 80 {
        true => out.push_str(&format!("{title} {file}\n")),
        false => out.push_str(&format!("{title}\n# {file}\n")),
    }
    out.push_str("# Written by `webdial new`.");
    let envs = env_names(preset, branch);
    if preset.required.iter().any(|v| !v.secret || v.map) {
        out.push_str(&format!(" Replace every {PLACEHOLDER:?} below."));
    }
    if !envs.is_empty() {
        out.push_str(&format!("\n# Set {} in the environment webdial runs in.", envs.join(", ")));
    }
    out.push_str("\n# Then run `webdial check`. The preset's header says more about each value.\n");
    out.push_str(&format!("extends: presets/{}.yaml\n", preset.name));
    if !preset.required.is_empty() || !preset.optional.is_empty() {
        out.push_str(if preset.required.is_empty() { "# vars:\n" } else { "vars:\n" });
    }
    for v in &preset.required {
        comment(&mut out, v);
        if v.map {
            out.push_str(&format!("  {}:\n    \"201\": {:?}\n    # \"202\": \"192.168.7.32\"\n", v.name, PLACEHOLDER));
        } else if v.secret {
            out.push_str(&format!("  {}: ${{{}}}\n", v.name, env_name(branch, &v.name)));
        } else {
            out.push_str(&format!("  {}: {:?}\n", v.name, PLACEHOLDER));
        }
    }
    if !preset.optional.is_empty() {
        out.push_str("  # Optional: the preset's values, which a branch may change.\n");
    }
    for v in &preset.optional {
        comment(&mut out, v);
        match &v.default {
            Some(default) => out.push_str(&format!("  # {}: {default}\n", v.name)),
            None => out.push_str(&format!("  # {}: ${{{}}}\n", v.name, env_name(branch, &v.name))),
        }
    }
    if preset.events && !preset.events_admitted {
        out.push_str(
            "# Call events: this preset reads the phone system's notifications (its header\n\
             # says what to set there). To receive them, say who may send them:\n\
             # events:\n",
        );
        out.push_str(&format!("#   secret: ${{{}}}\n", env_name(branch, "events_secret")));
        out.push_str("#   from: [\"192.168.7.0/24\"]\n");
    }
    if preset.actions.is_empty() {
        out.push_str(&format!(
            "# presets/{}.yaml has no actions, and a branch needs at least `dial`: this one\n\
             # has the caller's own phone open tel:NUMBER. Replace it with your phone\n\
             # system's dial, or extend a preset that has one.\n",
            preset.name
        ));
        out.push_str(&format!("dial: {}\n", Value::from(STARTER_DIAL)));
    }
    out
}

/// A variable's description from the header, as comment lines.
fn comment(out: &mut String, v: &Variable) {
    let Some(about) = &v.about else { return };
    let mut line = String::from("  #");
    for word in about.split_whitespace() {
        if line.len() + word.len() > 78 && line.len() > 3 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("  #");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_usable_environment_variable_names() {
        assert_eq!(env_name("london", "token"), "LONDON_TOKEN");
        assert_eq!(env_name("new-york.2", "client_secret"), "NEW_YORK_2_CLIENT_SECRET");
        assert_eq!(env_name("3rd", "pass"), "_3RD_PASS");
    }
}
