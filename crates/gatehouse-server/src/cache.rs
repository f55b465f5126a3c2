//! Reads kept between requests while nothing was committed since: the
//! credentials behind a token hash (every authenticated request reads them),
//! the MLflow bindings and the governance terms of projects (every MLflow
//! answer reads them).
//!
//! An entry is stamped with the store's [`Store::cache_generation`](gatehouse_store::Store::cache_generation) read
//! *before* the query that produced it, and served only while that number is
//! still current: any write transaction committed since, whatever it changed,
//! retires every entry. Credentials are stamped with
//! [`Store::accounts_generation`](gatehouse_store::Store::accounts_generation) instead, which only transactions that
//! wrote users or API tokens move, and bindings and governance terms with
//! [`Store::config_generation`](gatehouse_store::Store::config_generation), which only configuration changes move. The store gives no generation on PostgreSQL (other
//! replicas write there), and nothing is cached.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use gatehouse_store::mlflow::Binding;
use gatehouse_store::signoffs::ProjectTerms;
use gatehouse_store::tokens::TokenUse;
use gatehouse_store::users::Credentials;

/// At most this many entries per cache; past it the cache starts over.
const CAPACITY: usize = 4096;

/// A map whose entries hold while the store's generation does.
pub struct GenCache<K, V> {
    entries: Mutex<HashMap<K, (u64, V)>>,
}

impl<K: Eq + Hash, V: Clone> Default for GenCache<K, V> {
    fn default() -> Self {
        GenCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> GenCache<K, V> {
    /// The entry for `key`, if it was read at generation `now` (one of the
    /// store's generations, read now).
    pub fn get_at(&self, now: Option<u64>, key: &K) -> Option<V> {
        let now = now?;
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((generation, v)) if *generation == now => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, read by a query that started at `generation` (the
    /// value [`Store::cache_generation`](gatehouse_store::Store::cache_generation) gave before it).
    pub fn put(&self, generation: Option<u64>, key: K, value: V) {
        let Some(generation) = generation else {
            return;
        };
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (generation, value));
        }
    }

    /// The entries of `keys` read at generation `now`.
    pub fn get_many<'k>(
        &self,
        now: Option<u64>,
        keys: impl IntoIterator<Item = &'k K>,
    ) -> HashMap<K, V>
    where
        K: Clone + 'k,
    {
        let mut found = HashMap::new();
        let Some(now) = now else {
            return found;
        };
        if let Ok(entries) = self.entries.lock() {
            for k in keys {
                if let Some((generation, v)) = entries.get(k)
                    && *generation == now
                {
                    found.insert(k.clone(), v.clone());
                }
            }
        }
        found
    }

    /// Changes a kept entry in place (its generation stays).
    pub fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some((_, v)) = entries.get_mut(key)
        {
            change(v);
        }
    }
}

/// The server's caches.
#[derive(Default)]
pub struct Caches {
    /// By token hash: the user and the token, as `tokens::authenticate`
    /// found them (live at the time; expiry is checked again on each use).
    /// Checked against [`Store::accounts_generation`](gatehouse_store::Store::accounts_generation): it holds until users
    /// or tokens change.
    pub tokens: GenCache<String, (Credentials, TokenUse)>,
    /// Every MLflow binding (checked against [`Store::config_generation`](gatehouse_store::Store::config_generation)).
    pub bindings: GenCache<(), Arc<Vec<Binding>>>,
    /// By project key: its tier policy and sign-off configuration (checked
    /// against [`Store::config_generation`](gatehouse_store::Store::config_generation)).
    pub project_terms: GenCache<String, Arc<ProjectTerms>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_store::Store;

    async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
        (dir, Store::connect(&url).await.unwrap())
    }

    #[tokio::test]
    async fn an_entry_holds_until_a_write_commits() {
        let (_dir, store) = sqlite().await;
        let cache: GenCache<u8, &str> = GenCache::default();
        let g = store.cache_generation();
        assert!(g.is_some());
        cache.put(g, 1, "one");
        assert_eq!(cache.get_at(store.cache_generation(), &1), Some("one"));
        assert_eq!(cache.get_at(store.cache_generation(), &2), None);
        cache.update(&1, |v| *v = "uno");
        assert_eq!(cache.get_at(store.cache_generation(), &1), Some("uno"));
        // An empty transaction, committed: the entry is retired.
        store.begin().await.unwrap().commit().await.unwrap();
        assert_eq!(cache.get_at(store.cache_generation(), &1), None);
        // A rolled-back one leaves a new entry alone.
        cache.put(store.cache_generation(), 1, "again");
        drop(store.begin().await.unwrap());
        assert_eq!(cache.get_at(store.cache_generation(), &1), Some("again"));
    }

    #[tokio::test]
    async fn an_entry_read_before_a_commit_is_never_served() {
        let (_dir, store) = sqlite().await;
        let cache: GenCache<u8, &str> = GenCache::default();
        let before = store.cache_generation();
        // The query ran while a write committed: what it read may be stale.
        store.begin().await.unwrap().commit().await.unwrap();
        cache.put(before, 1, "stale");
        assert_eq!(cache.get_at(store.cache_generation(), &1), None);
    }

    #[tokio::test]
    async fn it_stays_bounded() {
        let (_dir, store) = sqlite().await;
        let cache: GenCache<usize, usize> = GenCache::default();
        let g = store.cache_generation();
        for i in 0..CAPACITY + 10 {
            cache.put(g, i, i);
        }
        assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
        assert_eq!(
            cache.get_at(store.cache_generation(), &(CAPACITY + 9)),
            Some(CAPACITY + 9)
        );
    }
}
