//! Caching with one fetch per key at a time.

use super::*;

pub(super) struct Fetched<T> {
    pub(super) value: Result<Arc<T>, String>,
    pub(super) until: SystemTime,
}

impl<T> Clone for Fetched<T> {
    fn clone(&self) -> Self {
        Fetched {
            value: self.value.clone(),
            until: self.until,
        }
    }
}

impl<T> Fetched<T> {
    pub(super) fn failed(e: String) -> Self {
        Fetched {
            value: Err(e),
            until: SystemTime::now() + FAILURE_RETRY,
        }
    }
}

/// A file's identity and version, to re-read a `file://` CRL when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileStamp(pub(super) Option<(SystemTime, u64, u64)>);

impl FileStamp {
    pub(super) fn of(p: &Path) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp(
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino()))),
        )
    }
}

pub(super) struct Slot<T> {
    pub(super) cell: OnceCell<Fetched<T>>,
    pub(super) stamp: Option<FileStamp>,
}

impl<T> Slot<T> {
    /// In flight, or fetched and still good.
    pub(super) fn live(&self, now: SystemTime) -> bool {
        self.cell.get().is_none_or(|f| now < f.until)
    }
}

pub(super) struct CacheInner<K, T> {
    pub(super) map: HashMap<K, Arc<Slot<T>>>,
    pub(super) prune_at: usize,
}

pub(super) struct Cache<K, T> {
    pub(super) inner: Mutex<CacheInner<K, T>>,
}

impl<K, T> std::fmt::Debug for Cache<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache({} entries)", lock(&self.inner).map.len())
    }
}

impl<K: Eq + Hash + Clone, T> Cache<K, T> {
    pub(super) fn new() -> Self {
        Cache {
            inner: Mutex::new(CacheInner {
                map: HashMap::new(),
                prune_at: 1024,
            }),
        }
    }

    /// The cached value for `key`, or the result of `fetch`, run once however many callers
    /// ask at the same time.
    pub(super) async fn get<F, Fut>(
        &self,
        key: &K,
        stamp: Option<FileStamp>,
        fetch: F,
    ) -> Fetched<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Fetched<T>>,
    {
        let slot = {
            let mut inner = lock(&self.inner);
            let now = SystemTime::now();
            match inner.map.get(key) {
                Some(s) if s.live(now) && s.stamp == stamp => s.clone(),
                _ => {
                    if inner.map.len() >= inner.prune_at {
                        inner.map.retain(|_, s| s.live(now));
                        inner.prune_at = (inner.map.len() * 2).max(1024);
                    }
                    let s = Arc::new(Slot {
                        cell: OnceCell::new(),
                        stamp,
                    });
                    inner.map.insert(key.clone(), s.clone());
                    s
                }
            }
        };
        slot.cell.get_or_init(fetch).await.clone()
    }
}
