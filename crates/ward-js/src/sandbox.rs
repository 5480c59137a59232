//! The QuickJS runtime behind [`Sandbox`], and the one-shot runs of mutators.

use crate::{JsError, Limits, CACHE, CACHE_BYTES};
use rquickjs::context::EvalOptions;
use rquickjs::convert::Coerced;
use rquickjs::{
    CatchResultExt, CaughtError, Context, Ctx, FromJs, Function, Persistent, Runtime, Value,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The stack scripts may use, bytes (well inside a 2 MiB thread stack).
const STACK: usize = 256 * 1024;

/// Sensu's helpers (otto's `addTimeFuncs`): timestamps are Unix seconds read in UTC, and
/// each returns 0 when called without one.
const HELPERS: &str = r#"(function (g) {
  function at(ts) { return new Date(Number(ts) * 1000); }
  g.seconds_since = function (ts) { return arguments.length === 0 ? 0 : Date.now() / 1000 - Number(ts); };
  g.second = function (ts) { return arguments.length === 0 ? 0 : at(ts).getUTCSeconds(); };
  g.minute = function (ts) { return arguments.length === 0 ? 0 : at(ts).getUTCMinutes(); };
  g.hour = function (ts) { return arguments.length === 0 ? 0 : at(ts).getUTCHours(); };
  g.weekday = function (ts) { return arguments.length === 0 ? 0 : at(ts).getUTCDay(); };
})(globalThis);"#;

/// `freeze(o)`: freezes `o` and everything reachable from it (properties, accessors,
/// prototypes), each object once (`seen`). The start of the two set-up scripts below.
macro_rules! freeze_fn {
    () => {
        r#"(function () {
  var seen = new Set();
  function freeze(o) {
    if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o)) return;
    seen.add(o);
    Object.freeze(o);
    Reflect.ownKeys(o).forEach(function (k) {
      var d = Object.getOwnPropertyDescriptor(o, k);
      if (!d) return;
      if ("value" in d) freeze(d.value);
      if (d.get) freeze(d.get);
      if (d.set) freeze(d.set);
    });
    freeze(Object.getPrototypeOf(o));
  }
"#
    };
}

/// Freezes the global object and everything reachable from it (the built-ins and their
/// prototypes), so that no evaluation can leave state for the next.
const FREEZE: &str = concat!(freeze_fn!(), "  freeze(globalThis);\n})();");

/// A mutator runtime, used for many runs: the built-ins frozen, the global object's own
/// properties made read-only, and `__ward_reset`, which deletes every global a run added
/// (Sensu's documented mutators assign undeclared variables: `data = …`).
const MUTATOR_SETUP: &str = concat!(
    freeze_fn!(),
    r#"  seen.add(globalThis);
  freeze(Object.getPrototypeOf(globalThis));
  var keep = new Set(Reflect.ownKeys(globalThis));
  keep.forEach(function (k) {
    var d = Object.getOwnPropertyDescriptor(globalThis, k);
    if ("value" in d) freeze(d.value);
    if (d.get) freeze(d.get);
    if (d.set) freeze(d.set);
    if (d.configurable) {
      Object.defineProperty(globalThis, k, "value" in d ? { writable: false, configurable: false } : { configurable: false });
    } else if (d.writable) {
      Object.defineProperty(globalThis, k, { writable: false });
    }
  });
  var ownKeys = Reflect.ownKeys;
  Object.defineProperty(globalThis, "__ward_reset", { value: function () {
    ownKeys(globalThis).forEach(function (k) { if (!keep.has(k)) delete globalThis[k]; });
    return ownKeys(globalThis).length === keep.size;
  } });
  keep.add("__ward_reset");
})();"#
);

/// Runs a mutator runtime serves before it is made anew (pending promise jobs and the
/// like, which a run can leave behind, go with it).
const MUTATOR_RUNS: u32 = 10_000;

/// Evaluates a script as otto does: global code, not strict (Sensu's scripts assign
/// undeclared variables).
fn sloppy<'js, V: FromJs<'js>, S: Into<Vec<u8>>>(ctx: &Ctx<'js>, src: S) -> rquickjs::Result<V> {
    let mut o = EvalOptions::default();
    o.global = true;
    o.strict = false;
    o.filename = Some("script".into());
    ctx.eval_with_options(src, o)
}

/// A runtime with its limits and a deadline its interrupt handler watches.
struct Engine {
    // Dropped in this order: the context before its runtime.
    ctx: Context,
    rt: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
    limits: Limits,
    /// The time limit of the run under way (what a timeout reports).
    timed: Cell<Duration>,
}

impl Engine {
    fn new(limits: Limits) -> Result<Engine, JsError> {
        let engine = |e: rquickjs::Error| JsError::Engine(e.to_string());
        let rt = Runtime::new().map_err(engine)?;
        rt.set_memory_limit(limits.memory);
        rt.set_max_stack_size(STACK);
        // Collect when a few MiB were allocated, not every 256 KiB (QuickJS's default):
        // each collection walks every built-in, which costs more than an event's parse.
        rt.set_gc_threshold((limits.memory / 8).max(256 << 10));
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        let d = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            d.get().is_some_and(|t| Instant::now() >= t)
        })));
        let ctx = Context::full(&rt).map_err(engine)?;
        let e = Engine {
            ctx,
            rt,
            deadline,
            limits,
            timed: Cell::new(limits.time),
        };
        e.run(|ctx| {
            crate::events::install(&ctx)
                .catch(&ctx)
                .map_err(|c| e.caught(c))?;
            for src in [HELPERS, crate::events::SENSU] {
                sloppy::<(), _>(&ctx, src)
                    .catch(&ctx)
                    .map_err(|c| e.caught(c))?;
            }
            Ok(())
        })?;
        Ok(e)
    }

    /// Runs `f` under the time limit.
    fn run<R>(&self, f: impl FnOnce(Ctx<'_>) -> Result<R, JsError>) -> Result<R, JsError> {
        self.run_within(self.limits.time, f)
    }

    /// Runs `f` under a time limit of `time`.
    fn run_within<R>(
        &self,
        time: Duration,
        f: impl FnOnce(Ctx<'_>) -> Result<R, JsError>,
    ) -> Result<R, JsError> {
        self.deadline.set(Some(Instant::now() + time));
        self.timed.set(time);
        let r = self.ctx.with(f);
        self.deadline.set(None);
        if r.is_err() {
            // What a stopped script had allocated goes now, not at the next one's expense.
            self.rt.run_gc();
        }
        r
    }

    /// What went wrong, from what QuickJS threw.
    fn caught(&self, e: CaughtError<'_>) -> JsError {
        let timed_out = self.deadline.get().is_some_and(|t| Instant::now() >= t);
        match e {
            CaughtError::Exception(ex) => {
                let message = ex.message().unwrap_or_default();
                let name: String = ex.get("name").unwrap_or_default();
                if timed_out && message == "interrupted" {
                    JsError::Timeout(self.timed.get())
                } else if message.contains("out of memory")
                    || message.contains("stack overflow")
                    || message.contains("call stack size exceeded")
                {
                    JsError::Memory
                } else if name == "SyntaxError" {
                    let (line, column) = position(&ex.stack().unwrap_or_default());
                    JsError::Syntax {
                        // The script's text starts on the wrapper's second line.
                        line: line.saturating_sub(1).max(1),
                        column: column.max(1),
                        message,
                    }
                } else if name.is_empty() {
                    JsError::Thrown(message)
                } else {
                    JsError::Thrown(format!("{name}: {message}"))
                }
            }
            // QuickJS throws null when it cannot even allocate the error.
            CaughtError::Value(v) if v.is_null() => JsError::Memory,
            CaughtError::Value(v) => JsError::Thrown(format!("threw {}", describe(&v))),
            CaughtError::Error(rquickjs::Error::Allocation) => JsError::Memory,
            CaughtError::Error(e) => JsError::Thrown(e.to_string()),
        }
    }
}

/// The last `:LINE:COLUMN` of a stack's first line that has one.
fn position(stack: &str) -> (u32, u32) {
    for l in stack.lines() {
        let l = l.trim().trim_end_matches(')');
        let mut parts = l.rsplitn(3, ':');
        if let (Some(c), Some(line), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            if let (Ok(line), Ok(c)) = (line.parse(), c.parse()) {
                return (line, c);
            }
        }
    }
    (0, 0)
}

fn describe(v: &Value<'_>) -> String {
    v.type_name().to_string()
}

/// Filter expressions: one runtime, its built-ins frozen, compiled expressions cached.
pub struct Sandbox {
    // Dropped before the engine: these hold values of its runtime.
    compiled: HashMap<(String, String), Persistent<Function<'static>>>,
    /// The text of the cached expressions, bytes.
    cached_bytes: usize,
    /// Set when an evaluation ran out of memory or left promise jobs behind: the sandbox
    /// is made anew before the next use.
    spoiled: bool,
    engine: Engine,
}

impl Sandbox {
    pub fn new(limits: Limits) -> Result<Sandbox, JsError> {
        Sandbox::with_libraries(limits, &[])
    }

    /// A sandbox whose global object also has what `libraries` (`(file, script)`,
    /// evaluated in order as global code, [`LIBRARY_TIME`] in all) define, before it is
    /// frozen: a filter's `runtime_assets` JavaScript files, as Sensu loads them.
    pub fn with_libraries(
        limits: Limits,
        libraries: &[(String, String)],
    ) -> Result<Sandbox, JsError> {
        let engine = Engine::new(limits)?;
        load_libraries(&engine, libraries)?;
        engine.run(|ctx| {
            sloppy::<(), _>(&ctx, FREEZE)
                .catch(&ctx)
                .map_err(|c| engine.caught(c))
        })?;
        Ok(Sandbox {
            compiled: HashMap::new(),
            cached_bytes: 0,
            spoiled: false,
            engine,
        })
    }

    pub fn limits(&self) -> Limits {
        self.engine.limits
    }

    /// Compiles `expr` as `function (ARG) { "use strict"; return (EXPR); }`, once when
    /// `keep` (strict: `arguments.callee` and undeclared globals, the ways an expression
    /// could keep state in its cached function or the global object, are errors).
    fn compile(
        &mut self,
        arg: &str,
        expr: &str,
        keep: bool,
    ) -> Result<Persistent<Function<'static>>, JsError> {
        let key = (arg.to_string(), expr.to_string());
        if let Some(f) = self.compiled.get(&key) {
            return Ok(f.clone());
        }
        let src = format!("(function ({arg}) {{ \"use strict\"; return (\n{expr}\n); }})");
        // The same text between brackets of another kind: a script that parses in both is
        // one expression (closing Ward's parenthesis needs a `)` that is a syntax error
        // between `[` and `]`, and the other way round).
        let other = format!("(function ({arg}) {{ \"use strict\"; return [\n{expr}\n]; }})");
        let e = &self.engine;
        let f = e
            .run(|ctx| {
                let f: Function = sloppy(&ctx, src).catch(&ctx).map_err(|c| e.caught(c))?;
                sloppy::<Function, _>(&ctx, other)
                    .catch(&ctx)
                    .map_err(|c| e.caught(c))?;
                Ok(Persistent::save(&ctx, f))
            })
            .map_err(|err| in_text(err, expr))?;
        if !keep {
            return Ok(f);
        }
        if self.compiled.len() >= CACHE || self.cached_bytes + expr.len() > CACHE_BYTES {
            self.compiled.clear();
            self.cached_bytes = 0;
        }
        self.cached_bytes += expr.len();
        self.compiled.insert(key, f.clone());
        Ok(f)
    }

    /// `json` parsed: a new object for each call, so that nothing one filter's expressions
    /// do to it is seen by another filter.
    fn parsed(&mut self, json: &str) -> Result<Persistent<Value<'static>>, JsError> {
        let e = &self.engine;
        e.run(|ctx| {
            let v = ctx.json_parse(json).catch(&ctx).map_err(|c| e.caught(c))?;
            Ok(Persistent::save(&ctx, v))
        })
    }

    /// Evaluates each expression with `ARG` bound to the object `json` describes (parsed
    /// once for them all), by JavaScript truthiness. Each has its own result and time
    /// limit; one that fails does not stop the others.
    pub fn predicates(
        &mut self,
        arg: &str,
        exprs: &[String],
        json: &str,
    ) -> Vec<Result<bool, JsError>> {
        let funcs: Vec<Result<Persistent<Function<'static>>, JsError>> =
            exprs.iter().map(|x| self.compile(arg, x, true)).collect();
        let object = match self.parsed(json) {
            Ok(o) => o,
            Err(err) => return exprs.iter().map(|_| Err(err.clone())).collect(),
        };
        let e = &self.engine;
        let results = funcs
            .into_iter()
            .map(|f| {
                let f = f?;
                e.run(|ctx| {
                    let restore = |x: rquickjs::Error| JsError::Engine(x.to_string());
                    let f = f.restore(&ctx).map_err(restore)?;
                    let o = object.clone().restore(&ctx).map_err(restore)?;
                    let b: Coerced<bool> = f.call((o,)).catch(&ctx).map_err(|c| e.caught(c))?;
                    Ok(b.0)
                })
            })
            .collect::<Vec<_>>();
        if results.contains(&Err(JsError::Memory)) || self.engine.rt.is_job_pending() {
            self.spoiled = true;
        }
        results
    }
}

thread_local! {
    static SANDBOX: RefCell<Option<Sandbox>> = const { RefCell::new(None) };
}

/// How long a sandbox's libraries may take to load, together.
pub const LIBRARY_TIME: Duration = Duration::from_secs(1);

/// Sandboxes with libraries a thread keeps (by key); past this the oldest goes.
const LIBRARY_SANDBOXES: usize = 8;

thread_local! {
    static WITH_LIBRARIES: RefCell<Vec<(String, Sandbox)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's sandbox for the libraries named `key` (loaded with `load`
/// the first time, and again after `limits` change or the sandbox was spoiled). A thread
/// keeps [`LIBRARY_SANDBOXES`] of them. `load`'s error is returned as `Thrown`.
pub fn with_library_sandbox<R>(
    limits: Limits,
    key: &str,
    load: impl FnOnce() -> Result<Vec<(String, String)>, String>,
    f: impl FnOnce(&mut Sandbox) -> R,
) -> Result<R, JsError> {
    WITH_LIBRARIES.with(|cell| {
        let mut all = cell
            .try_borrow_mut()
            .map_err(|_| JsError::Engine("the sandbox is already in use on this thread".into()))?;
        let at = all
            .iter()
            .position(|(k, s)| k == key && s.limits() == limits && !s.spoiled);
        let i = match at {
            Some(i) => i,
            None => {
                all.retain(|(k, _)| k != key);
                if all.len() >= LIBRARY_SANDBOXES {
                    all.remove(0);
                }
                let libraries = load().map_err(JsError::Thrown)?;
                all.push((
                    key.to_string(),
                    Sandbox::with_libraries(limits, &libraries)?,
                ));
                all.len() - 1
            }
        };
        Ok(f(&mut all[i].1))
    })
}

/// Runs `f` with this thread's sandbox (made on first use, and again when `limits`
/// change). Meant for the threads of a blocking pool: each keeps its own.
pub fn with_sandbox<R>(limits: Limits, f: impl FnOnce(&mut Sandbox) -> R) -> Result<R, JsError> {
    SANDBOX.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| JsError::Engine("the sandbox is already in use on this thread".into()))?;
        if slot
            .as_ref()
            .is_none_or(|s| s.limits() != limits || s.spoiled)
        {
            *slot = None;
            *slot = Some(Sandbox::new(limits)?);
        }
        match slot.as_mut() {
            Some(s) => Ok(f(s)),
            None => Err(JsError::Engine("no sandbox".into())),
        }
    })
}

/// Checks that `expr` is one expression that compiles (nothing is evaluated), with the
/// position of the first error in its own text.
pub fn check_expression(expr: &str) -> Result<(), JsError> {
    if expr.trim().is_empty() {
        return Err(JsError::Syntax {
            line: 1,
            column: 1,
            message: "the expression is empty".into(),
        });
    }
    let limits = Limits::default();
    with_sandbox(limits, |s| s.compile("event", expr, false).map(|_| ()))?
}

/// Checks that `body` compiles as a function body (a JavaScript mutator's `eval`).
pub fn check_function_body(body: &str) -> Result<(), JsError> {
    let e = Engine::new(Limits::default())?;
    body_compiles(&e, body)
}

/// `body` compiles as one function body: it parses both as `(function () {…})` and as
/// `[function () {…}]`, which no text that closes the function can do.
fn body_compiles(e: &Engine, body: &str) -> Result<(), JsError> {
    let a = format!("(function () {{\n{body}\n}})");
    let b = format!("[function () {{\n{body}\n}}]");
    e.run(|ctx| {
        for src in [a, b] {
            sloppy::<Value, _>(&ctx, src)
                .catch(&ctx)
                .map_err(|c| e.caught(c))?;
        }
        Ok(())
    })
    .map_err(|err| in_text(err, body))
}

/// A syntax error placed in the script's own text: one past its end when QuickJS found it
/// in the wrapper around it (the script ended too early, or closed the wrapper).
fn in_text(err: JsError, script: &str) -> JsError {
    match err {
        JsError::Syntax {
            line,
            column,
            message,
        } => {
            let lines: Vec<&str> = script.split('\n').collect();
            let n = lines.len() as u32;
            if line > n {
                let last = lines.last().map(|l| l.chars().count()).unwrap_or(0) as u32;
                JsError::Syntax {
                    line: n,
                    column: last + 1,
                    message: format!("at the end of the script: {message} (it is not complete, or it closes a bracket it did not open)"),
                }
            } else {
                JsError::Syntax {
                    line,
                    column,
                    message,
                }
            }
        }
        other => other,
    }
}

/// Evaluates `libraries` (`(file, script)`, in order, as global code, [`LIBRARY_TIME`] in
/// all) in `engine`; an error names the file.
fn load_libraries(engine: &Engine, libraries: &[(String, String)]) -> Result<(), JsError> {
    if libraries.is_empty() {
        return Ok(());
    }
    engine.run_within(LIBRARY_TIME, |ctx| {
        for (file, script) in libraries {
            sloppy::<(), _>(&ctx, script.as_str())
                .catch(&ctx)
                .map_err(|c| match engine.caught(c) {
                    JsError::Thrown(m) => JsError::Thrown(format!("{file}: {m}")),
                    JsError::Syntax {
                        line,
                        column,
                        message,
                    } => {
                        JsError::Thrown(format!("{file}: line {line}, column {column}: {message}"))
                    }
                    other => other,
                })?;
        }
        Ok(())
    })
}

thread_local! {
    /// This thread's mutator runtimes, by libraries' key (`""`: none), and how many runs
    /// each has served.
    static MUTATOR: RefCell<Vec<(String, Engine, u32)>> = const { RefCell::new(Vec::new()) };
    /// Mutator runtimes this thread has made (one serves many runs).
    static MUTATOR_BUILT: Cell<u64> = const { Cell::new(0) };
}

/// How many mutator runtimes this thread has made: the tests check that a runtime
/// serves run after run (a fresh one costs ~70 times a run).
#[cfg(test)]
pub(crate) fn mutator_runtimes_built() -> u64 {
    MUTATOR_BUILT.with(Cell::get)
}

/// Runs a JavaScript mutator's `eval` as a function body, with `event` the event
/// `event_json` describes and `globals` as string variables, within `time`. Returns what it
/// returned when a string, else the (possibly changed) event as JSON. The runtime is this
/// thread's mutator runtime (`memory` its heap): every global a run adds is deleted after
/// it, the built-ins and the runtime's own globals cannot be changed, and after a failure
/// or [`MUTATOR_RUNS`] runs the runtime is made anew.
pub fn run_mutator(
    body: &str,
    event_json: &str,
    globals: &[(String, String)],
    time: Duration,
    memory: usize,
) -> Result<String, JsError> {
    run_mutator_with_libraries(
        "",
        || Ok(Vec::new()),
        body,
        event_json,
        globals,
        time,
        memory,
    )
}

/// [`run_mutator`] in a runtime whose globals also hold what the libraries named `key`
/// define (loaded with `load` when the runtime is made, before it is frozen: a JavaScript
/// mutator's `runtime_assets`). A thread keeps [`LIBRARY_SANDBOXES`] such runtimes.
/// `load`'s error is returned as `Thrown`.
pub fn run_mutator_with_libraries(
    key: &str,
    load: impl FnOnce() -> Result<Vec<(String, String)>, String>,
    body: &str,
    event_json: &str,
    globals: &[(String, String)],
    time: Duration,
    memory: usize,
) -> Result<String, JsError> {
    MUTATOR.with(|cell| {
        let mut all = cell.try_borrow_mut().map_err(|_| {
            JsError::Engine("the mutator runtime is already in use on this thread".into())
        })?;
        let at = all
            .iter()
            .position(|(k, e, runs)| k == key && e.limits.memory == memory && *runs < MUTATOR_RUNS);
        let i = match at {
            Some(i) => i,
            None => {
                all.retain(|(k, _, _)| k != key);
                if all.len() >= LIBRARY_SANDBOXES {
                    all.remove(0);
                }
                MUTATOR_BUILT.with(|b| b.set(b.get() + 1));
                let e = Engine::new(Limits { time, memory })?;
                load_libraries(&e, &load().map_err(JsError::Thrown)?)?;
                e.run(|ctx| {
                    sloppy::<(), _>(&ctx, MUTATOR_SETUP)
                        .catch(&ctx)
                        .map_err(|c| e.caught(c))
                })?;
                all.push((key.to_string(), e, 0));
                all.len() - 1
            }
        };
        let (_, e, runs) = &mut all[i];
        *runs += 1;
        let out = mutate_once(e, body, event_json, globals, time);
        let reset = e.run(|ctx| {
            let reset: Function = ctx
                .globals()
                .get("__ward_reset")
                .catch(&ctx)
                .map_err(|c| e.caught(c))?;
            reset
                .call::<_, bool>(())
                .catch(&ctx)
                .map_err(|c| e.caught(c))
        });
        // A global that would not go (defined non-configurable), a failure, or promise
        // jobs left behind: the runtime is not used again.
        if out.is_err() || reset != Ok(true) || e.rt.is_job_pending() {
            all.remove(i);
        }
        out
    })
}

fn mutate_once(
    e: &Engine,
    body: &str,
    event_json: &str,
    globals: &[(String, String)],
    time: Duration,
) -> Result<String, JsError> {
    body_compiles(e, body)?;
    let src = format!("(function () {{\n{body}\n}}())");
    e.run_within(time, |ctx| {
        let g = ctx.globals();
        for (k, v) in globals {
            g.set(k.as_str(), v.as_str())
                .catch(&ctx)
                .map_err(|c| e.caught(c))?;
        }
        let event = ctx
            .json_parse(event_json)
            .catch(&ctx)
            .map_err(|c| e.caught(c))?;
        g.set("event", event.clone())
            .catch(&ctx)
            .map_err(|c| e.caught(c))?;
        let out: Value = sloppy(&ctx, src).catch(&ctx).map_err(|c| e.caught(c))?;
        if out.is_undefined() || out.is_null() {
            let text = ctx
                .json_stringify(event)
                .catch(&ctx)
                .map_err(|c| e.caught(c))?;
            return match text {
                Some(t) => t.to_string().map_err(|x| JsError::Engine(x.to_string())),
                None => Err(JsError::Returned("an event that is not JSON".into())),
            };
        }
        match out.as_string() {
            Some(s) => s.to_string().map_err(|x| JsError::Engine(x.to_string())),
            None => Err(JsError::Returned(describe(&out))),
        }
    })
}
