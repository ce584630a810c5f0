use super::*;

fn fp(seed: &str) -> Fingerprint {
    Fingerprint::of(seed.as_bytes())
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tchat-accounts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join(ACCOUNTS_FILE)
}

#[tokio::test]
async fn a_registered_nick_covers_its_case_width_and_look_alike_variants() {
    let accounts = Accounts::in_memory(None);
    accounts.create(Account::new("Alice", Some(fp("a")), None)).await.unwrap();
    // Case, fullwidth, Cyrillic а, capital I for l.
    for variant in ["alice", "ALICE", "Ａｌｉｃｅ", "\u{430}lice", "AIice"] {
        let found = accounts.covering(variant).map(|a| a.nick);
        assert_eq!(found.as_deref(), Some("Alice"), "{variant}");
    }
    assert!(accounts.covering("alicia").is_none());
    let e = accounts.create(Account::new("ALICE", Some(fp("b")), None)).await.unwrap_err();
    assert_eq!(e.to_string(), "Alice is registered already");
}

#[test]
fn a_password_is_kept_as_an_argon2id_hash_and_matches_only_itself() {
    let hash = hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
    assert!(password_matches(&hash, "correct horse"));
    assert!(!password_matches(&hash, "correct hors"));
    assert!(!password_matches(&hash, ""));
    assert!(!password_matches("not a hash", "correct horse"));
    // A fresh salt each time.
    assert_ne!(hash_password("correct horse").unwrap(), hash);
    let account = Account::new("bob", None, Some(hash.clone()));
    assert!(!format!("{account:?}").contains(&hash));
}

#[test]
fn a_password_is_taken_over_tls_or_from_loopback_only() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(password_allowed(false, ip("127.0.0.1")));
    assert!(password_allowed(false, ip("::1")));
    assert!(password_allowed(false, ip("::ffff:127.0.0.1")));
    assert!(!password_allowed(false, ip("192.0.2.7")));
    assert!(!password_allowed(false, ip("::ffff:192.0.2.7")));
    assert!(!password_allowed(false, ip("2001:db8::1")));
    assert!(password_allowed(true, ip("192.0.2.7")));
    assert!(password_allowed(true, ip("2001:db8::1")));
}

#[tokio::test]
async fn the_file_keeps_accounts_across_opens_privately() {
    let path = temp_file("file");
    let open = || Accounts::open(Box::new(AccountsFile { path: path.clone() }), None).unwrap();
    let accounts = open();
    accounts.create(Account::new("alice", Some(fp("a")), None)).await.unwrap();
    accounts.create(Account::new("bob", None, Some(hash_password("pw").unwrap()))).await.unwrap();
    accounts
        .change("alice", |a| {
            a.keys.push(fp("a2"));
            Ok(())
        })
        .await
        .unwrap()
        .unwrap();
    let again = open();
    let alice = again.covering("ALICE").unwrap();
    assert_eq!(alice.keys, [fp("a"), fp("a2")]);
    assert!(password_matches(again.covering("bob").unwrap().password.as_deref().unwrap(), "pw"));
    again.remove("bob").await.unwrap();
    assert!(open().covering("bob").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    std::fs::write(&path, "{\"nick\":\"x\"}\nnot json\n").unwrap();
    let e = Accounts::open(Box::new(AccountsFile { path: path.clone() }), None).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

struct Failing;

impl Backing for Failing {
    fn load(&self) -> Pending<Vec<Account>> {
        ready(Ok(vec![Account::new("alice", Some(fp("a")), None)]))
    }
    fn store(&self, _: Change<'_>, _: &[&Account]) -> Pending<()> {
        ready(Err(io::Error::other("disk full")))
    }
}

#[tokio::test]
async fn a_change_that_cannot_be_saved_is_undone() {
    let accounts = Accounts::open(Box::new(Failing), None).unwrap();
    assert!(accounts.create(Account::new("bob", Some(fp("b")), None)).await.is_err());
    assert!(accounts.covering("bob").is_none());
    let changed = accounts
        .change("alice", |a| {
            a.oper = true;
            Ok(())
        })
        .await;
    assert!(matches!(changed, Err(AccountError::Store(_))));
    assert!(!accounts.covering("alice").unwrap().oper);
    assert!(accounts.remove("alice").await.is_err());
    assert!(accounts.covering("alice").is_some());
}

#[tokio::test]
async fn an_account_unused_past_the_expiry_is_released() {
    let accounts = Accounts::in_memory(Some(Duration::from_secs(3600)));
    let mut old = Account::new("alice", Some(fp("a")), None);
    old.seen = Timestamp::now() - Duration::from_secs(7200);
    accounts.lock().insert(old);
    assert!(accounts.covering("alice").is_none());
    assert!(accounts.list().is_empty());
    accounts.create(Account::new("alice", Some(fp("b")), None)).await.unwrap();
    assert_eq!(accounts.covering("alice").unwrap().keys, [fp("b")]);
}

/// On a paused clock, so the slow hashing of a debug build cannot outlast a wait.
#[tokio::test(start_paused = true)]
async fn wrong_passwords_make_the_address_wait_longer_each_time() {
    let accounts = Accounts::in_memory(None);
    let hash = hash_password("pw").unwrap();
    accounts.create(Account::new("bob", None, Some(hash))).await.unwrap();
    accounts.create(Account::new("carol", Some(fp("c")), None)).await.unwrap();
    let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    // Three tries in a row, then the waits.
    for _ in 0..crate::auth::FREE_MISSES {
        assert_eq!(
            accounts.identify(a, "bob", "nope"),
            Err(IdentifyRefused::Wrong(Duration::ZERO))
        );
    }
    assert_eq!(
        accounts.identify(a, "bob", "nope"),
        Err(IdentifyRefused::Wrong(Duration::from_secs(1)))
    );
    // The right password, too soon: not even checked.
    assert!(matches!(accounts.identify(a, "BOB", "pw"), Err(IdentifyRefused::TooSoon(_))));
    assert_eq!(accounts.identify(b, "BOB", "pw").unwrap().nick, "bob");
    tokio::time::advance(Duration::from_millis(999)).await;
    let left = accounts.identify(a, "bob", "nope");
    assert_eq!(left, Err(IdentifyRefused::TooSoon(Duration::from_millis(1))));
    // The next wrong one doubles the wait; the right one, once it has passed, is let in.
    tokio::time::advance(Duration::from_millis(1)).await;
    let doubled = accounts.identify(a, "bob", "nope");
    assert_eq!(doubled, Err(IdentifyRefused::Wrong(Duration::from_secs(2))));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(accounts.identify(a, "bob", "pw").unwrap().nick, "bob");
    assert_eq!(accounts.identify(b, "dave", "pw"), Err(IdentifyRefused::NotRegistered));
    assert_eq!(
        accounts.identify(b, "carol", "pw"),
        Err(IdentifyRefused::NoPassword("carol".into()))
    );
}

#[tokio::test]
async fn a_login_keeps_an_account_from_expiring_writing_at_most_once_a_day() {
    let day = Duration::from_secs(86_400);
    let accounts = Accounts::in_memory(Some(3 * day));
    let mut old = Account::new("alice", Some(fp("a")), None);
    old.seen = Timestamp::now() - 2 * day;
    accounts.lock().insert(old);
    accounts.seen("ALICE").await.unwrap();
    let seen = accounts.covering("alice").unwrap().seen;
    assert!(Timestamp::now().duration_since(seen).unsigned_abs() < Duration::from_secs(60));
    // Seen again within the day: kept as it is (no write).
    accounts.seen("alice").await.unwrap();
    assert_eq!(accounts.covering("alice").unwrap().seen, seen);
    accounts.seen("nobody").await.unwrap();
}

/// A shared backing in memory: refuses a create over a nick it holds, as the
/// backbone's bucket does.
#[derive(Default, Clone)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<Account>>>);

impl Backing for Shared {
    fn load(&self) -> Pending<Vec<Account>> {
        ready(Ok(self.0.lock().unwrap().clone()))
    }
    fn store(&self, change: Change<'_>, _: &[&Account]) -> Pending<()> {
        ready(self.held(change))
    }
}

impl Shared {
    fn held(&self, change: Change<'_>) -> io::Result<()> {
        let mut held = self.0.lock().unwrap();
        let same = |a: &Account, b: &Account| nick::key(&a.nick) == nick::key(&b.nick);
        match change {
            Change::Created(a) if held.iter().any(|h| same(h, a)) => {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, "held"))
            }
            Change::Created(a) | Change::Stored(a) => {
                held.retain(|h| !same(h, a));
                held.push(a.clone());
                Ok(())
            }
            Change::Removed(a) => {
                held.retain(|h| !same(h, a));
                Ok(())
            }
        }
    }
}

#[tokio::test]
async fn shared_accounts_bring_the_files_over_and_follow_other_nodes() {
    let shared = Shared::default();
    shared.0.lock().unwrap().push(Account::new("alice", Some(fp("theirs")), None));
    let accounts = Accounts::in_memory(None);
    accounts.create(Account::new("ALICE", Some(fp("mine")), None)).await.unwrap();
    accounts.create(Account::new("bob", Some(fp("b")), None)).await.unwrap();
    assert_eq!(accounts.share(Box::new(shared.clone())).await.unwrap(), 1, "bob only");
    assert_eq!(accounts.covering("alice").unwrap().keys, [fp("theirs")], "theirs wins");
    assert!(accounts.covering("bob").is_some());
    // Another node registered a nick first: refused here as registered.
    shared.0.lock().unwrap().push(Account::new("carol", Some(fp("c")), None));
    let e = accounts.create(Account::new("Carol", Some(fp("x")), None)).await.unwrap_err();
    assert!(matches!(e, AccountError::Registered(_)), "{e}");
    // What the other nodes change comes in by replication, look-alikes covered.
    accounts.replicate(Account::new("carol", Some(fp("c")), None));
    assert!(accounts.covering("\u{441}arol").is_some());
    assert!(accounts.replicate_removal(&nick::key("CAROL")).is_some());
    assert!(accounts.covering("carol").is_none());
    accounts.remove("bob").await.unwrap();
    assert_eq!(shared.0.lock().unwrap().len(), 2, "bob removed from the shared store");
}
