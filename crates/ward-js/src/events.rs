//! Sensu's event functions for filter expressions (`sensu.FetchEvent`, `sensu.ListEvents`,
//! `sensu.EventStatus`, `sensu.CheckDependencies`): the expressions read the events of the
//! filtered event's namespace through an [`EventLookup`] the caller provides for the
//! evaluation ([`with_events`]). Outside one (mutators, checks at creation) they throw.

use rquickjs::{Ctx, Function};
use std::cell::RefCell;
use std::rc::Rc;

/// The most events `sensu.ListEvents` returns; past this it throws (the events would not
/// fit the sandbox's memory and time).
pub const MAX_LISTED: usize = 1000;

/// What the event functions read: the events of one namespace.
pub trait EventLookup {
    /// The filtered event's entity: the entity of a check named without one.
    fn entity(&self) -> &str;
    /// The event of `entity`/`check` as the events API gives it (JSON text), None when
    /// there is none.
    fn fetch(&self, entity: &str, check: &str) -> Result<Option<String>, String>;
    /// Up to `limit` events of the namespace (JSON texts), and whether there are more.
    fn list(&self, limit: usize) -> Result<(Vec<String>, bool), String>;
}

thread_local! {
    static LOOKUP: RefCell<Option<Rc<dyn EventLookup>>> = const { RefCell::new(None) };
}

/// Runs `f` with `lookup` behind the event functions of this thread's sandboxes.
pub fn with_events<R>(lookup: Rc<dyn EventLookup>, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<Rc<dyn EventLookup>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let old = self.0.take();
            LOOKUP.with(|l| *l.borrow_mut() = old);
        }
    }
    let old = LOOKUP.with(|l| l.borrow_mut().replace(lookup));
    let _reset = Reset(old);
    f()
}

/// `__ward_events(op, entity, check)`: the native half of the `sensu` object: JSON text,
/// or `!` and an error message, which the JavaScript half throws (an `Error` made in
/// Rust cannot be given its message: the built-ins are frozen).
fn host(op: String, entity: String, check: String) -> String {
    let lookup = LOOKUP.with(|l| l.borrow().clone());
    let Some(l) = lookup else {
        return "!Sensu's event functions are only available in event filter expressions".into();
    };
    let answer = match op.as_str() {
        "fetch" => {
            let entity = if entity.is_empty() { l.entity() } else { &entity };
            l.fetch(entity, &check).and_then(|e| {
                e.ok_or_else(|| format!("no event for entity {entity:?} and check {check:?}"))
            })
        }
        "list" => l.list(MAX_LISTED).and_then(|(events, more)| {
            if more {
                Err(format!(
                    "the namespace has more than {MAX_LISTED} events; sensu.ListEvents returns at most that many (use sensu.FetchEvent)"
                ))
            } else {
                Ok(format!("[{}]", events.join(",")))
            }
        }),
        other => Err(format!("no event function {other:?}")),
    };
    answer.unwrap_or_else(|m| format!("!{m}"))
}

/// Puts `__ward_events` on the global object, for [`SENSU`] to take.
pub(crate) fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    ctx.globals()
        .set("__ward_events", Function::new(ctx.clone(), host)?)
}

/// The `sensu` object, built on `__ward_events` (which it removes from the global object).
/// Checks are names (the filtered event's entity), `{entity, check}` objects, or arrays of
/// either.
pub(crate) const SENSU: &str = r#"(function (g) {
  var host = g.__ward_events;
  delete g.__ward_events;
  function ref(r) {
    if (typeof r === "string") return ["", r];
    if (r !== null && typeof r === "object" && typeof r.check === "string") {
      return [typeof r.entity === "string" ? r.entity : "", r.check];
    }
    throw new TypeError("a check is its name or {entity: NAME, check: NAME}");
  }
  function refs(args) {
    var out = [];
    for (var i = 0; i < args.length; i++) {
      if (Array.isArray(args[i])) args[i].forEach(function (r) { out.push(ref(r)); });
      else out.push(ref(args[i]));
    }
    return out;
  }
  function call(op, entity, check) {
    var t = host(op, entity || "", check || "");
    if (t.charAt(0) === "!") throw new Error(t.slice(1));
    return JSON.parse(t);
  }
  function fetch(r) { return call("fetch", r[0], r[1]); }
  g.sensu = {
    FetchEvent: function (entity, check) { return fetch([String(entity), String(check)]); },
    ListEvents: function () { return call("list"); },
    EventStatus: function () { return refs(arguments).map(function (r) { return fetch(r).check.status; }); },
    CheckDependencies: function () { return refs(arguments).every(function (r) { return fetch(r).check.status === 0; }); }
  };
})(globalThis);"#;
