use super::*;
use std::time::{Duration, Instant};

const EVENT: &str = r#"{"timestamp": 1700000000, "check": {"name": "http", "status": 2, "occurrences": 1,
  "history": [{"status": 0, "executed": 1}, {"status": 2, "executed": 2}]},
  "entity": {"name": "web-1", "labels": {"region": "us-west-1"}, "subscriptions": ["linux"]}}"#;

fn eval(exprs: &[&str]) -> Vec<Result<bool, JsError>> {
    let exprs: Vec<String> = exprs.iter().map(|s| s.to_string()).collect();
    with_sandbox(Limits::default(), |s| s.predicates("event", &exprs, EVENT)).unwrap()
}

#[test]
fn expressions_see_the_event_and_are_judged_by_truthiness() {
    let r = eval(&[
        "event.check.occurrences == 1",
        "event.entity.labels.region == 'us-west-1' && event.check.status != 0",
        "event.entity.labels.region === 'eu-1'",
        "event.check.history.length",
        "event.check.history.filter(function (h) { return h.status == 0 }).length == 0",
        "''",
    ]);
    assert_eq!(
        r,
        vec![
            Ok(true),
            Ok(true),
            Ok(false),
            Ok(true),
            Ok(false),
            Ok(false)
        ]
    );
}

#[test]
fn sensus_time_helpers_read_unix_seconds_in_utc() {
    // 1700000000 is Tuesday 2023-11-14 22:13:20 UTC.
    let r = eval(&[
        "hour(event.timestamp) == 22",
        "minute(event.timestamp) == 13",
        "second(event.timestamp) == 20",
        "weekday(event.timestamp) == 2",
        "seconds_since(event.timestamp) > 90000000",
        "hour() === 0 && seconds_since() === 0",
        "typeof sensu == 'object'",
    ]);
    assert!(r.iter().all(|x| *x == Ok(true)), "{r:?}");
}

#[test]
fn a_throwing_expression_is_an_error_of_its_own() {
    let r = eval(&["event.check.nope.deeper == 1", "true"]);
    match &r[0] {
        Err(JsError::Thrown(m)) => assert!(m.starts_with("TypeError"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r[1], Ok(true));
}

#[test]
fn syntax_errors_name_the_line_and_column_in_the_expressions_own_text() {
    match check_expression("event.check.status == ") {
        Err(JsError::Syntax { line, message, .. }) => {
            assert!(line <= 2, "{line}");
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match check_expression("event.check.status == 1 &&\n  event.entity.name ==== 'x'") {
        Err(JsError::Syntax { line, column, .. }) => assert_eq!((line, column > 1), (2, true)),
        other => panic!("{other:?}"),
    }
    assert!(check_expression("").is_err());
    assert_eq!(
        check_expression("event.check.occurrences == 1 && hour(event.timestamp) >= 9"),
        Ok(())
    );
}

#[test]
fn a_loop_forever_is_stopped_at_the_limit_and_the_sandbox_goes_on() {
    let limits = Limits {
        time: Duration::from_millis(50),
        memory: 32 << 20,
    };
    let exprs = vec![
        "(function () { while (true) {} })()".to_string(),
        "/(a+)+$/.test('a'.repeat(40) + 'b')".to_string(),
    ];
    let started = Instant::now();
    let r = with_sandbox(limits, |s| s.predicates("event", &exprs, EVENT)).unwrap();
    assert_eq!(r[0], Err(JsError::Timeout(limits.time)));
    assert_eq!(r[1], Err(JsError::Timeout(limits.time)));
    assert!(started.elapsed() < Duration::from_secs(5));
    let ok = with_sandbox(limits, |s| {
        s.predicates("event", &["event.check.status == 2".to_string()], EVENT)
    })
    .unwrap();
    assert_eq!(ok, vec![Ok(true)]);
}

#[test]
fn memory_and_stack_hogs_are_stopped() {
    let r = eval(&[
        "(function () { var a = []; while (true) a.push(new Array(100000).fill(1)); })()",
        "(function f() { return f() + 1; })()",
        "event.check.status == 2",
    ]);
    assert_eq!(r[0], Err(JsError::Memory));
    assert_eq!(r[1], Err(JsError::Memory));
    assert_eq!(r[2], Ok(true));
}

#[test]
fn nothing_outlives_an_evaluation_and_there_is_no_way_out() {
    let r = eval(&[
        "(Object.prototype.polluted = 1, true)",
        "({}).polluted === undefined",
        "(leaked = 1, true)",
        "typeof leaked == 'undefined'",
        "(event.check.status = 0, true)",
        "typeof require == 'undefined' && typeof std == 'undefined' && typeof os == 'undefined' && typeof fetch == 'undefined'",
    ]);
    // The first and third cannot write (frozen) but do not throw in sloppy mode.
    assert_eq!(r[1], Ok(true));
    assert_eq!(r[3], Ok(true));
    assert_eq!(r[5], Ok(true));
    // The next evaluation gets a fresh event.
    assert_eq!(eval(&["event.check.status == 2"]), vec![Ok(true)]);
}

#[test]
fn mutators_return_a_string_or_the_changed_event() {
    let t = Duration::from_millis(200);
    let out = run_mutator(
        "data = JSON.parse(JSON.stringify(event)); delete data.check.name; return JSON.stringify(data)",
        EVENT,
        &[],
        t,
        32 << 20,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["check"].get("name").is_none());
    assert_eq!(v["entity"]["name"], "web-1");
    let out = run_mutator(
        "event.check.output = 'via ' + TEAM",
        EVENT,
        &[("TEAM".into(), "ops".into())],
        t,
        32 << 20,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["check"]["output"], "via ops");
    assert_eq!(
        run_mutator("return 42", EVENT, &[], t, 32 << 20),
        Err(JsError::Returned("int".into()))
    );
    assert_eq!(
        run_mutator("while (true) {}", EVENT, &[], t, 32 << 20),
        Err(JsError::Timeout(t))
    );
    assert!(matches!(
        check_function_body("return (;"),
        Err(JsError::Syntax { line: 1, .. })
    ));
    assert_eq!(check_function_body("return JSON.stringify(event)"), Ok(()));
}

#[test]
fn a_script_cannot_close_wards_wrapper_and_errors_at_the_end_stay_in_its_text() {
    for x in ["true); (1", "true)\nvar x = (1", "1]); ([2"] {
        assert!(
            matches!(check_expression(x), Err(JsError::Syntax { .. })),
            "{x:?} was accepted"
        );
    }
    assert_eq!(check_expression("(1), (2)"), Ok(()));
    match check_expression("event.check.status ==") {
        Err(JsError::Syntax { line, column, .. }) => assert_eq!((line, column), (1, 22)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        check_function_body("return 'x'; }); (function () {"),
        Err(JsError::Syntax { .. })
    ));
    match check_function_body("return {") {
        Err(JsError::Syntax { line, column, .. }) => assert_eq!((line, column), (1, 9)),
        other => panic!("{other:?}"),
    }
    assert!(run_mutator(
        "return 'x'; }); (function () {",
        "{}",
        &[],
        Duration::from_millis(100),
        32 << 20
    )
    .is_err());
}

#[test]
fn a_mutator_run_leaves_nothing_for_the_next() {
    let t = Duration::from_millis(200);
    let first = run_mutator(
        "leak = 'x'; hour = null; JSON = null; Object.prototype.p = 1; return 'a'",
        EVENT,
        &[("SECRET".into(), "s".into())],
        t,
        32 << 20,
    );
    assert_eq!(first, Ok("a".into()));
    let second = run_mutator(
        "return [typeof leak, typeof hour, typeof JSON, typeof ({}).p, typeof SECRET].join()",
        EVENT,
        &[],
        t,
        32 << 20,
    );
    assert_eq!(
        second,
        Ok("undefined,function,object,undefined,undefined".into())
    );
}

#[test]
fn an_expression_cannot_keep_state_in_its_function_or_in_promises() {
    let keeper = "(arguments.callee.k = (arguments.callee.k || 0) + 1) > 1";
    let r = eval(&[keeper]);
    assert!(
        matches!(&r[0], Err(JsError::Thrown(m)) if m.starts_with("TypeError")),
        "{r:?}"
    );
    // A promise job is never run, and the sandbox holding it is made anew.
    let r = eval(&["(Promise.resolve(event).then(function (e) { throw e; }), true)"]);
    assert_eq!(r, vec![Ok(true)]);
    assert_eq!(eval(&["event.check.status == 2"]), vec![Ok(true)]);
}

#[test]
fn a_mutator_that_pins_a_global_gets_its_runtime_thrown_away() {
    let t = Duration::from_millis(200);
    let pin = "Object.defineProperty(globalThis, 'event', {get: function () { return 1 }, set: function (v) { stolen = v }, configurable: false}); return 'x'";
    assert_eq!(run_mutator(pin, EVENT, &[], t, 32 << 20), Ok("x".into()));
    let next = run_mutator(
        "return typeof stolen + ':' + typeof event.check",
        EVENT,
        &[],
        t,
        32 << 20,
    );
    assert_eq!(next, Ok("undefined:object".into()));
}

/// Events by (entity, check), with their check status.
struct Events(Vec<(&'static str, &'static str, u32)>);

impl EventLookup for Events {
    fn entity(&self) -> &str {
        "web-1"
    }
    fn fetch(&self, entity: &str, check: &str) -> Result<Option<String>, String> {
        Ok(self
            .0
            .iter()
            .find(|(e, c, _)| *e == entity && *c == check)
            .map(|(e, c, s)| {
                format!(r#"{{"entity": {{"metadata": {{"name": "{e}"}}}}, "check": {{"metadata": {{"name": "{c}"}}, "status": {s}}}}}"#)
            }))
    }
    fn list(&self, limit: usize) -> Result<(Vec<String>, bool), String> {
        let all: Vec<String> = self
            .0
            .iter()
            .map(|(e, c, _)| self.fetch(e, c).unwrap().unwrap())
            .collect();
        let more = all.len() > limit;
        Ok((all.into_iter().take(limit).collect(), more))
    }
}

#[test]
fn sensus_event_functions_read_the_namespaces_events_as_documented() {
    let events = std::rc::Rc::new(Events(vec![
        ("web-1", "database", 0),
        ("web-1", "disk", 0),
        ("web-1", "port1", 2),
        ("server01", "disk", 0),
        ("router", "port1", 0),
        ("router", "port2", 1),
    ]));
    let r = with_events(events, || {
        eval(&[
            // filters.md: FetchEvent(entity, check).
            r#"sensu.FetchEvent("server01", "disk").check.status == 0"#,
            // EventStatus: names (this event's entity) and objects.
            r#"sensu.EventStatus("database", "port1").join() == "0,2""#,
            r#"sensu.EventStatus({entity: "router", check: "port2"}).join() == "1""#,
            r#"sensu.EventStatus().length == 0"#,
            // sensu-query-expressions.md: CheckDependencies' five documented forms.
            r#"sensu.CheckDependencies("database", "disk")"#,
            r#"sensu.CheckDependencies({entity: "server01", check: "disk"}, {entity: "web-1", check: "database"})"#,
            r#"sensu.CheckDependencies("disk", {entity: "server01", check: "disk"})"#,
            r#"sensu.CheckDependencies(["database", "port1"])"#,
            r#"sensu.CheckDependencies([{entity: "router", check: "port1"}, {entity: "router", check: "port2"}])"#,
            r#"sensu.CheckDependencies()"#,
            r#"sensu.ListEvents().length == 6"#,
            // A check with no event: an error, as in Sensu.
            r#"sensu.FetchEvent("web-1", "nothing")"#,
            r#"sensu.CheckDependencies(42)"#,
        ])
    });
    let (ok, errs) = r.split_at(11);
    assert_eq!(
        ok,
        [
            Ok(true),
            Ok(true),
            Ok(true),
            Ok(true),
            Ok(true),
            Ok(true),
            Ok(true),
            Ok(false),
            Ok(false),
            Ok(true),
            Ok(true)
        ]
    );
    assert!(
        matches!(&errs[0], Err(JsError::Thrown(m)) if m.contains("no event for entity \"web-1\" and check \"nothing\"")),
        "{errs:?}"
    );
    assert!(
        matches!(&errs[1], Err(JsError::Thrown(m)) if m.contains("{entity: NAME, check: NAME}")),
        "{errs:?}"
    );
}

#[test]
fn event_functions_throw_outside_a_lookup_and_list_is_bounded() {
    let r = eval(&[r#"sensu.ListEvents()"#]);
    assert!(
        matches!(&r[0], Err(JsError::Thrown(m)) if m.contains("only available in event filter")),
        "{r:?}"
    );
    let many: Vec<(&'static str, &'static str, u32)> = (0..MAX_LISTED + 1)
        .map(|i| ("e", &*Box::leak(format!("c{i}").into_boxed_str()), 0))
        .collect();
    let r = with_events(std::rc::Rc::new(Events(many)), || {
        eval(&["sensu.ListEvents()"])
    });
    assert!(
        matches!(&r[0], Err(JsError::Thrown(m)) if m.contains("more than 1000 events")),
        "{r:?}"
    );
    // The global object cannot be given another lookup by a script.
    let r = eval(&["typeof __ward_events == 'undefined' && Object.isFrozen(sensu)"]);
    assert_eq!(r, vec![Ok(true)]);
}

#[test]
fn one_mutator_runtime_serves_run_after_run() {
    let before = super::sandbox::mutator_runtimes_built();
    for i in 0..5 {
        let out = run_mutator(
            "data = event.n; return String(data);",
            &format!("{{\"n\": {i}}}"),
            &[("TOKEN".into(), "t".into())],
            Duration::from_secs(1),
            64 << 20,
        )
        .unwrap();
        assert_eq!(out, i.to_string());
    }
    // The first run may build this thread's runtime; the rest reuse it (its added
    // globals, `data`, `event` and `TOKEN`, deleted after each run).
    assert!(super::sandbox::mutator_runtimes_built() - before <= 1);
}

#[test]
fn a_mutators_libraries_are_loaded_once_and_cannot_be_changed() {
    let lib = || {
        Ok(vec![(
            "lib/short.js".to_string(),
            "var prefix = 'host:'; function short(e) { return prefix + e.name; }".to_string(),
        )])
    };
    let t = Duration::from_secs(1);
    let before = super::sandbox::mutator_runtimes_built();
    let run = |body: &str| {
        super::sandbox::run_mutator_with_libraries(
            "a",
            lib,
            body,
            r#"{"name": "web-1"}"#,
            &[],
            t,
            64 << 20,
        )
    };
    assert_eq!(run("return short(event)"), Ok("host:web-1".into()));
    // A run cannot change what the library defined, for itself or the next run.
    let _ = run("prefix = 'evil:'; short = function () { return 'x' }; return short(event)");
    assert_eq!(run("return short(event)"), Ok("host:web-1".into()));
    assert!(super::sandbox::mutator_runtimes_built() - before <= 2);
    // Without the libraries, the function is not there; a library that throws names its file.
    assert!(run_mutator("return short(event)", r#"{"name": "w"}"#, &[], t, 64 << 20).is_err());
    let bad = super::sandbox::run_mutator_with_libraries(
        "b",
        || {
            Ok(vec![(
                "lib/bad.js".into(),
                "throw new Error('nope')".into(),
            )])
        },
        "return 'x'",
        "{}",
        &[],
        t,
        64 << 20,
    );
    match bad {
        Err(JsError::Thrown(m)) => assert!(m.contains("lib/bad.js") && m.contains("nope"), "{m}"),
        other => panic!("{other:?}"),
    }
}
