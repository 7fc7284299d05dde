//! The systems a stand-in speaks, one entry per system: its name (as
//! `webdial standin --system NAME` takes it, the same as its preset's
//! where there is one), which request paths are its, and how it answers.
//! A stand-in started for one system answers only that system's paths
//! (404 for the rest); the default one answers every system's, which is
//! how tests and `serve --demo` use it: paths of different systems do not
//! overlap, and a test here checks they stay apart.

use axum::response::Response;

use super::{
    Received, Shared, ami, asterisk_ari, baresip, cisco, click2call, fanvil, freeswitch, grandstream_gxp,
    grandstream_ucm, iqx, kazoo, plivo, poly, ringcentral, sipgate, snom, telnyx, threecx, twilio, vodia, voispeed,
    vonage, wazo, yealink, yeastar, yeastar_s,
};

/// One system the stand-in speaks.
pub struct System {
    /// Its name: `webdial standin --system NAME`.
    pub name: &'static str,
    /// What it is, one line, for `webdial standin --list`.
    pub about: &'static str,
    /// Whether a request path is one of this system's.
    pub(super) serves: fn(&str) -> bool,
    /// The answer the system would give (and any events it then pushes).
    pub(super) answer: fn(&Shared, &Received) -> Response,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Every system, in the order `webdial standin --list` shows them.
pub static SYSTEMS: &[System] = &[
    System {
        name: "voispeed",
        about: "VOIspeed SERI: user and extended services, user events pushed",
        serves: |p| p == "/PBX/seri_endpoint.php",
        answer: |s, got| {
            let (answer, events) = voispeed::seri(got, || s.id());
            s.push(events.into_iter().map(super::Push::Query).collect());
            answer
        },
    },
    System {
        name: "click2call",
        about: "voiptech Click2Call dialup.php",
        serves: |p| p == "/API/dialup.php",
        answer: |s, got| click2call::dialup(got, || s.id()),
    },
    System {
        name: "iqx",
        about: "an IQX-style make_call URL",
        serves: |p| p == "/ivr/PbxAPI.aspx",
        answer: |_, got| iqx::make_call(got),
    },
    System {
        name: "3cx",
        about: "3CX v20 Call Control API (OAuth client credentials)",
        serves: |p| p == "/connect/token" || p.starts_with("/callcontrol/"),
        answer: |s, got| match got.path.as_str() {
            "/connect/token" => threecx::token(&s.threecx, got),
            _ => threecx::callcontrol(&s.threecx, got, || s.id()),
        },
    },
    System {
        name: "asterisk-ami",
        about: "Asterisk Manager Interface over HTTP (/rawman)",
        serves: |p| p == "/rawman" || p == "/asterisk/rawman",
        answer: |s, got| ami::rawman(&s.ami, got),
    },
    System {
        name: "yeastar-p",
        about: "Yeastar P-Series OpenAPI",
        serves: |p| p == "/openapi/v1.0/get_token" || p.starts_with("/openapi/v1.0/call/"),
        answer: |s, got| match got.path.as_str() {
            "/openapi/v1.0/get_token" => yeastar::get_token(&s.yeastar, got),
            _ => yeastar::call(&s.yeastar, got, || s.id()),
        },
    },
    System {
        name: "grandstream-ucm",
        about: "Grandstream UCM6xxx HTTPS API (challenge, login, cookie)",
        serves: |p| p == "/api",
        answer: |s, got| grandstream_ucm::api(&s.ucm, got),
    },
    System {
        name: "snom",
        about: "a Snom desk phone's command.htm (dial answers 302)",
        serves: |p| p == "/command.htm",
        answer: |_, got| snom::command(got),
    },
    System {
        name: "yealink",
        about: "a Yealink desk phone's Action URI (/servlet?key=…)",
        serves: |p| p == "/servlet",
        answer: |s, got| yealink::servlet(&s.yealink, got),
    },
    System {
        name: "fanvil",
        about: "a Fanvil desk phone's Active URI (ConfigManApp.com?key=…)",
        serves: |p| p == "/cgi-bin/ConfigManApp.com",
        answer: |_, got| fanvil::config_man_app(got),
    },
    System {
        name: "grandstream-gxp",
        about: "a Grandstream GXP/GRP desk phone's api-make_call / api-phone_operation",
        serves: |p| p == "/cgi-bin/api-make_call" || p == "/cgi-bin/api-phone_operation",
        answer: |_, got| grandstream_gxp::api(got),
    },
    System {
        name: "poly",
        about: "a Poly VVX/Trio desk phone's REST API (/api/v1/callctrl/…)",
        serves: |p| p.starts_with("/api/v1/callctrl/"),
        answer: |_, got| poly::callctrl(got),
    },
    System {
        name: "cisco",
        about: "a Cisco IP phone's CGI Execute (POST /CGI/Execute, XML=)",
        serves: |p| p == "/CGI/Execute",
        answer: |_, got| cisco::execute(got),
    },
    System {
        name: "baresip",
        about: "baresip's httpd module (GET /?/dial%20URI, /raw/)",
        serves: baresip::serves,
        answer: |s, got| baresip::httpd(got, || s.id()),
    },
    System {
        name: "yeastar-s",
        about: "Yeastar S-Series legacy API v2.0.0/v1.1.0 (md5 login, token)",
        serves: yeastar_s::serves,
        answer: yeastar_s::api,
    },
    System {
        name: "vodia",
        about: "Vodia PBX click-to-dial (remote_call.htm)",
        serves: |p| p == "/remote_call.htm",
        answer: |_, got| vodia::remote_call(got),
    },
    System {
        name: "asterisk-ari",
        about: "Asterisk REST Interface (ARI): channels originate, hangup, dtmf, redirect, hold",
        serves: |p| {
            let p = p.strip_prefix("/asterisk").unwrap_or(p);
            p == "/ari/channels" || p.starts_with("/ari/channels/")
        },
        answer: asterisk_ari::answer,
    },
    System {
        name: "freeswitch",
        about: "FreeSWITCH mod_xml_rpc /api/ commands: originate, uuid_kill, uuid_transfer, uuid_send_dtmf, uuid_hold",
        serves: freeswitch::serves,
        answer: freeswitch::answer,
    },
    System {
        name: "wazo",
        about: "Wazo Platform: wazo-auth tokens, wazo-calld calls; webhookd call events pushed",
        serves: wazo::serves,
        answer: wazo::answer,
    },
    System {
        name: "kazoo",
        about: "2600Hz Kazoo Crossbar: user_auth tokens, quickcall, channel hangup/transfer; channel webhooks pushed",
        serves: kazoo::serves,
        answer: kazoo::answer,
    },
    System {
        name: "twilio",
        about: "Twilio Programmable Voice Calls API, signed status callbacks",
        serves: twilio::serves,
        answer: twilio::answer,
    },
    System {
        name: "telnyx",
        about: "Telnyx Call Control v2 (/v2/calls), Ed25519-signed webhooks",
        serves: telnyx::serves,
        answer: telnyx::answer,
    },
    System {
        name: "plivo",
        about: "Plivo Voice API (/v1/Account/{auth_id}/Call/), V2-signed callbacks",
        serves: plivo::serves,
        answer: plivo::answer,
    },
    System {
        name: "ringcentral",
        about: "RingCentral RingOut (JWT-grant login, bearer token)",
        serves: ringcentral::serves,
        answer: ringcentral::answer,
    },
    System {
        name: "sipgate",
        about: "sipgate io (/v2/sessions/calls, call manipulation)",
        serves: sipgate::serves,
        answer: sipgate::answer,
    },
    System {
        name: "vonage",
        about: "Vonage Voice API (/v1/calls, RS256 JWT per request)",
        serves: vonage::serves,
        answer: vonage::answer,
    },
];

/// The system named `name`.
pub fn find(name: &str) -> Option<&'static System> {
    SYSTEMS.iter().find(|s| s.name == name)
}

/// The system among `among` whose path `path` is.
pub(super) fn serving(among: &'static [System], path: &str) -> Option<&'static System> {
    among.iter().find(|s| (s.serves)(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path from each system's documented requests: each must be served
    /// by exactly its own system, or the all-systems stand-in would answer
    /// one system's request with another's answer.
    #[test]
    fn every_system_has_a_unique_name_and_no_path_is_served_twice() {
        let mut names: Vec<&str> = SYSTEMS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SYSTEMS.len(), "system names are unique");
        let samples = [
            ("voispeed", "/PBX/seri_endpoint.php"),
            ("click2call", "/API/dialup.php"),
            ("iqx", "/ivr/PbxAPI.aspx"),
            ("3cx", "/callcontrol/201/makecall"),
            ("asterisk-ami", "/rawman"),
            ("yeastar-p", "/openapi/v1.0/call/dial"),
            ("grandstream-ucm", "/api"),
            ("snom", "/command.htm"),
            ("yealink", "/servlet"),
            ("fanvil", "/cgi-bin/ConfigManApp.com"),
            ("grandstream-gxp", "/cgi-bin/api-make_call"),
            ("grandstream-gxp", "/cgi-bin/api-phone_operation"),
            ("poly", "/api/v1/callctrl/dial"),
            ("cisco", "/CGI/Execute"),
            ("baresip", "/raw/"),
            ("baresip", "/"),
            ("yeastar-s", "/api/v2.0.0/call/dial"),
            ("yeastar-s", "/api/v1.1.0/login"),
            ("vodia", "/remote_call.htm"),
            ("asterisk-ari", "/ari/channels/webdial-1/dtmf"),
            ("freeswitch", "/api/originate"),
            ("wazo", "/api/auth/0.1/token"),
            ("wazo", "/api/calld/1.0/calls/1765000000.42/dtmf"),
            ("kazoo", "/v2/user_auth"),
            ("kazoo", "/v2/accounts/91eb05e5/users/72855158/quickcall/201"),
            ("twilio", "/2010-04-01/Accounts/AC00000000000000000000000000000001/Calls.json"),
            ("telnyx", "/v2/calls/v3:abc/actions/hangup"),
            ("plivo", "/v1/Account/MADEMOPLIVOAUTHID000/Call/"),
            ("ringcentral", "/restapi/v1.0/account/~/extension/~/ring-out"),
            ("sipgate", "/v2/sessions/calls"),
            ("sipgate", "/v2/calls/abc/dtmf"),
            ("telnyx", "/v2/calls"),
            ("vonage", "/v1/calls"),
            ("vonage", "/v1/calls/aaaa/dtmf"),
        ];
        for (name, path) in samples {
            let serving: Vec<&str> = SYSTEMS.iter().filter(|s| (s.serves)(path)).map(|s| s.name).collect();
            assert_eq!(serving, [name], "{path}");
        }
        assert!(find("nope").is_none());
    }
}
