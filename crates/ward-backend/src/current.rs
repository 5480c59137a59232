//! [`Current`]: a value every request reads and API writes replace whole (the RBAC
//! policy, the silences, the pipeline's resources). Readers take an `Arc` without a lock
//! (arc-swap); reloads happen one at a time, so a load that began earlier never replaces
//! one that began later.

use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

pub struct Current<T> {
    value: ArcSwap<T>,
    reloading: Mutex<()>,
}

impl<T: Default> Default for Current<T> {
    fn default() -> Self {
        Current {
            value: ArcSwap::from_pointee(T::default()),
            reloading: Mutex::new(()),
        }
    }
}

impl<T> Current<T> {
    /// The value in force.
    pub fn get(&self) -> Arc<T> {
        self.value.load_full()
    }

    /// Puts `v` in force.
    pub fn set(&self, v: T) {
        self.value.store(Arc::new(v));
    }

    /// Makes a new value from the one in force with `load` (blocking: it reads the store)
    /// and puts it in force; one reload at a time. On an error the value stays.
    pub fn reload<E>(&self, load: impl FnOnce(&T) -> Result<T, E>) -> Result<(), E> {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let next = load(&self.get())?;
        self.set(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_replace_whole_and_a_failed_one_keeps_the_value() {
        let c: Current<Vec<u32>> = Current::default();
        let before = c.get();
        c.reload(|old| Ok::<_, ()>(old.iter().chain([&1]).copied().collect()))
            .unwrap();
        assert_eq!(*c.get(), [1]);
        assert!(before.is_empty(), "readers keep what they took");
        assert!(c.reload(|_| Err("store down")).is_err());
        assert_eq!(*c.get(), [1]);
    }
}
