//! Micro-benchmarks of the pure parts of a dial: IQX parse, render, answer
//! reading. `cargo bench --bench pure`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use webdial::pbx::answer::{Answer, Format};
use webdial::pbx::rules::{Rules, Spec};
use webdial::syntax::iqx;
use webdial::template::{Context, HttpSpec, RequestTemplate};

const IQX_LINE: &str = "{POST}http://192.168.7.231:5463/ivr/PbxAPI.aspx?func=make_call<&>from=^<&>to=#";
const VOISPEED_URL: &str = "{{ scheme }}://{{ host }}/PBX/seri_endpoint.php?service=call_request&token={{ token }}&ext={{ extension }}&number={{ number }}{% if device %}&device={{ device }}{% endif %}";

fn values() -> Context {
    Context::new("milan")
        .with("extension", "201")
        .with("number", "+442079460000")
        .with("raw_number", "+44 20 7946 0000")
}

fn benches(c: &mut Criterion) {
    c.bench_function("iqx_parse", |b| b.iter(|| iqx::parse(black_box(IQX_LINE))));

    let iqx_template = RequestTemplate::iqx(iqx::parse(IQX_LINE).expect("valid line"));
    let v = values();
    let mut env = webdial::template::new_env();
    c.bench_function("render_iqx_post", |b| b.iter(|| iqx_template.render(&env, black_box(&v))));

    let vars: BTreeMap<String, serde_json::Value> =
        [("scheme", "https"), ("host", "pbx-milan.example.com"), ("token", "tok-123"), ("device", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
    let spec = HttpSpec { url: VOISPEED_URL.into(), ..HttpSpec::default() };
    let jinja = RequestTemplate::compile(&mut env, "dial", spec, &vars, &Default::default()).expect("valid template");
    c.bench_function("render_jinja_voispeed", |b| b.iter(|| jinja.render(&env, black_box(&v))));

    let xml_rules = Rules::compile(
        &mut env,
        Spec {
            format: Format::Xml,
            ok: Some("outcome == '0'".into()),
            call_id: Some("request_id".into()),
            message: Some("error".into()),
            ..Spec::default()
        },
    )
    .expect("valid rules");
    let xml = Answer {
        http_status: 200,
        content_type: Some("text/html; charset=UTF-8".into()),
        location: None,
        headers: Vec::new(),
        body: "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<result>\n<outcome>0</outcome>\n<request_id>15652770917203</request_id>\n</result>".into(),
    };
    c.bench_function("read_xml_voispeed", |b| b.iter(|| xml_rules.read(&env, black_box(&xml))));

    let json_rules = Rules::compile(
        &mut env,
        Spec {
            format: Format::Json,
            ok: Some("status | upper == 'OK'".into()),
            call_id: Some("dial1_uid".into()),
            message: Some("reason".into()),
            ..Spec::default()
        },
    )
    .expect("valid rules");
    let json = Answer {
        http_status: 200,
        content_type: Some("application/json".into()),
        location: None,
        headers: Vec::new(),
        body: r#"{"status":"OK","dial1_uid":"15652770917204.1","dial2_uid":"15652770917205.2"}"#.into(),
    };
    c.bench_function("read_json_click2call", |b| b.iter(|| json_rules.read(&env, black_box(&json))));
}

criterion_group!(pure, benches);
criterion_main!(pure);
