//! The behaviour every key-value backend must have, as one suite of
//! checks run against each backend's own tests (`kv_suite!`), so the
//! embedded store and Redis are held to exactly the same semantics.

use super::{KvStore, MAX_KEY_BYTES, MAX_VALUE_BYTES, StoreError};

pub async fn set_get_delete(kv: &dyn KvStore) {
    assert_eq!(kv.get("a", "k").await.unwrap(), None);
    kv.set("a", "k", b"v").await.unwrap();
    assert_eq!(kv.get("a", "k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(kv.delete("a", "k").await.unwrap());
    assert!(!kv.delete("a", "k").await.unwrap());
    assert_eq!(kv.get("a", "k").await.unwrap(), None);
}

pub async fn namespaces_are_isolated(kv: &dyn KvStore) {
    kv.set("a", "k", b"from a").await.unwrap();
    assert_eq!(kv.get("b", "k").await.unwrap(), None);
    kv.set("ab", "x", b"1").await.unwrap();
    assert_eq!(kv.list_keys("a", "", 100).await.unwrap(), vec!["k"]);
    assert_eq!(
        kv.list_keys("b", "", 100).await.unwrap(),
        Vec::<String>::new()
    );
}

pub async fn list_keys_by_prefix_with_limit(kv: &dyn KvStore) {
    for key in ["user/2", "user/1", "order/1", "user/3", "userx"] {
        kv.set("s", key, b"").await.unwrap();
    }
    assert_eq!(
        kv.list_keys("s", "user/", 100).await.unwrap(),
        vec!["user/1", "user/2", "user/3"]
    );
    assert_eq!(
        kv.list_keys("s", "user/", 2).await.unwrap(),
        vec!["user/1", "user/2"]
    );
}

pub async fn increment_counts_from_zero_and_rejects_text(kv: &dyn KvStore) {
    assert_eq!(kv.increment("s", "n", 1).await.unwrap(), 1);
    assert_eq!(kv.increment("s", "n", 5).await.unwrap(), 6);
    assert_eq!(kv.get("s", "n").await.unwrap().as_deref(), Some(&b"6"[..]));
    kv.set("s", "t", b"abc").await.unwrap();
    assert!(matches!(
        kv.increment("s", "t", 1).await,
        Err(StoreError::NotANumber)
    ));
}

pub async fn compare_and_swap_only_swaps_on_match(kv: &dyn KvStore) {
    assert!(kv.compare_and_swap("s", "k", None, b"1").await.unwrap());
    assert!(!kv.compare_and_swap("s", "k", None, b"2").await.unwrap());
    assert!(
        !kv.compare_and_swap("s", "k", Some(b"9"), b"2")
            .await
            .unwrap()
    );
    assert!(
        kv.compare_and_swap("s", "k", Some(b"1"), b"2")
            .await
            .unwrap()
    );
    assert_eq!(kv.get("s", "k").await.unwrap().as_deref(), Some(&b"2"[..]));
}

pub async fn limits_are_enforced(kv: &dyn KvStore) {
    assert!(matches!(
        kv.set("s", "", b"").await,
        Err(StoreError::InvalidKey(_))
    ));
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(
        kv.get("s", &long).await,
        Err(StoreError::InvalidKey(_))
    ));
    let big = vec![0; MAX_VALUE_BYTES + 1];
    assert!(matches!(
        kv.set("s", "k", &big).await,
        Err(StoreError::ValueTooLarge(_))
    ));
}

pub async fn concurrent_increments_are_atomic(kv: &dyn KvStore) {
    // Four writers at once, each waiting for its own answer before its
    // next increment: their writes interleave in the store.
    let writer = || async {
        for _ in 0..50 {
            kv.increment("s", "n", 1).await.unwrap();
        }
    };
    futures::future::join_all((0..4).map(|_| writer())).await;
    assert_eq!(kv.increment("s", "n", 0).await.unwrap(), 200);
}

/// Stored numbers are decimal text, read the same way by every backend:
/// surrounding ASCII whitespace, a sign and leading zeros are fine.
pub async fn increment_reads_decimal_text_like_every_backend(kv: &dyn KvStore) {
    for (stored, after) in [(" +0007 ", 8), ("-0", 1), ("\t-3\r\n", -2), ("0009", 10)] {
        kv.set("s", "n", stored.as_bytes()).await.unwrap();
        assert_eq!(
            kv.increment("s", "n", 1).await.unwrap(),
            after,
            "{stored:?}"
        );
    }
    for bad in ["", "1.5", "- 3", "+-3", " 12 x", "9223372036854775808"] {
        kv.set("s", "n", bad.as_bytes()).await.unwrap();
        assert!(
            matches!(kv.increment("s", "n", 1).await, Err(StoreError::NotANumber)),
            "{bad:?}"
        );
        assert_eq!(
            kv.get("s", "n").await.unwrap().as_deref(),
            Some(bad.as_bytes())
        );
    }
    kv.set("s", "n", i64::MAX.to_string().as_bytes())
        .await
        .unwrap();
    assert!(matches!(
        kv.increment("s", "n", 1).await,
        Err(StoreError::Storage(_))
    ));
    assert_eq!(
        kv.get("s", "n").await.unwrap(),
        Some(i64::MAX.to_string().into_bytes())
    );
}

/// Keys are listed in byte order within a prefix, whatever their
/// characters, and a limit of 0 lists nothing.
pub async fn list_keys_is_in_byte_order_and_honours_the_limit(kv: &dyn KvStore) {
    for key in [
        "user/\u{e9}",
        "user",
        "usera",
        "user/z",
        "user/\u{1f600}",
        "\u{fc}",
    ] {
        kv.set("s", key, b"").await.unwrap();
    }
    assert_eq!(
        kv.list_keys("s", "user/", 100).await.unwrap(),
        vec!["user/z", "user/\u{e9}", "user/\u{1f600}"]
    );
    assert_eq!(kv.list_keys("s", "", 100).await.unwrap().len(), 6);
    assert!(kv.list_keys("s", "", 0).await.unwrap().is_empty());
    assert_eq!(
        kv.list_keys("s", "user", 2).await.unwrap(),
        vec!["user", "user/z"]
    );
}

/// Paging with `keys_after` visits every key of a namespace once, in
/// order, and never one of a neighbouring namespace.
pub async fn keys_after_pages_through_one_namespace(kv: &dyn KvStore) {
    for key in ["c", "a", "e", "b", "d"] {
        kv.set("p", key, b"").await.unwrap();
    }
    kv.set("p/x", "z", b"").await.unwrap();
    kv.set("q", "0", b"").await.unwrap();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = kv.keys_after("p", &after, 2).await.unwrap();
        assert!(page.len() <= 2, "{page:?}");
        match page.last() {
            Some(last) => after = last.clone(),
            None => break,
        }
        seen.extend(page);
    }
    assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
    assert!(kv.keys_after("p", "e", 10).await.unwrap().is_empty());
    assert!(kv.keys_after("p", "", 0).await.unwrap().is_empty());
}

/// Defines one `#[tokio::test]` per check of the suite, each on a fresh store
/// from `$open` (an expression, awaited if need be, giving `(guard, store)`; the guard keeps
/// whatever the store needs alive).
macro_rules! kv_suite {
    ($open:expr) => {
        mod suite {
            use super::*;

            #[tokio::test]
            async fn set_get_delete() {
                let (_guard, kv) = $open;
                crate::kv::suite::set_get_delete(&kv).await;
            }

            #[tokio::test]
            async fn namespaces_are_isolated() {
                let (_guard, kv) = $open;
                crate::kv::suite::namespaces_are_isolated(&kv).await;
            }

            #[tokio::test]
            async fn list_keys_by_prefix_with_limit() {
                let (_guard, kv) = $open;
                crate::kv::suite::list_keys_by_prefix_with_limit(&kv).await;
            }

            #[tokio::test]
            async fn list_keys_is_in_byte_order_and_honours_the_limit() {
                let (_guard, kv) = $open;
                crate::kv::suite::list_keys_is_in_byte_order_and_honours_the_limit(&kv).await;
            }

            #[tokio::test]
            async fn keys_after_pages_through_one_namespace() {
                let (_guard, kv) = $open;
                crate::kv::suite::keys_after_pages_through_one_namespace(&kv).await;
            }

            #[tokio::test]
            async fn increment_counts_from_zero_and_rejects_text() {
                let (_guard, kv) = $open;
                crate::kv::suite::increment_counts_from_zero_and_rejects_text(&kv).await;
            }

            #[tokio::test]
            async fn increment_reads_decimal_text_like_every_backend() {
                let (_guard, kv) = $open;
                crate::kv::suite::increment_reads_decimal_text_like_every_backend(&kv).await;
            }

            #[tokio::test]
            async fn compare_and_swap_only_swaps_on_match() {
                let (_guard, kv) = $open;
                crate::kv::suite::compare_and_swap_only_swaps_on_match(&kv).await;
            }

            #[tokio::test]
            async fn limits_are_enforced() {
                let (_guard, kv) = $open;
                crate::kv::suite::limits_are_enforced(&kv).await;
            }

            #[tokio::test]
            async fn concurrent_increments_are_atomic() {
                let (_guard, kv) = $open;
                crate::kv::suite::concurrent_increments_are_atomic(&kv).await;
            }
        }
    };
}
pub(crate) use kv_suite;
