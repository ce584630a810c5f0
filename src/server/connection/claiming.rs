//! On a backbone, a nick claim across nodes before the hub gives a nick: the
//! registration (the hello, a first `/nick`, a guest's welcome) and `/nick`.
//!
//! A claim is two key-value creates on NATS, a round trip each. The connection's task
//! awaits it ([`Session::claim`], polled by the connection loop) rather than blocking a
//! worker thread on it: thousands of clients connecting at once would otherwise each
//! hold a thread of tokio's blocking pool, and once its 512 threads were all waiting on
//! NATS no worker was left to read NATS's answers, so the node stalled for good.
//!
//! Meanwhile the session takes no line (the intake holds what came after the one that
//! started the claim) and no timer of its own fires; once the claim is done the hub
//! decides on what it found, synchronously as in a single process, and the held lines
//! follow in order. Without a backbone there is no claim and nothing waits.
//!
//! The session waits the same way for its other round trips to NATS ([`Session::wait_for`]):
//! an account written to the backbone's bucket, an operator's ban or mute kept for every
//! node. Those are ready when first polled without a backbone, and acted on at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use serde_json::json;

use super::Session;
use crate::framing::Line;
use crate::protocol::Resume;
use crate::server::hub::{Across, Hub, NickChange};
use futures_util::FutureExt;

/// A claim in flight, and what to do once it is done.
///
/// In a `Mutex` only so that a [`Session`] holding one may be shared while a task
/// awaits with it borrowed (the future, `Send`, is not `Sync`); it is reached through
/// `get_mut`, never locked. Boxed once more, so that a session holds 8 bytes for it
/// rather than 32 (every connection's task holds a session; few ever claim across
/// nodes).
#[allow(clippy::type_complexity)]
pub(super) struct Claiming(Box<Mutex<Pin<Box<dyn Future<Output = Claimed> + Send>>>>);

impl Claiming {
    fn new(claim: impl Future<Output = Claimed> + Send + 'static) -> Claiming {
        Claiming(Box::new(Mutex::new(Box::pin(claim))))
    }
}

impl Future for Claiming {
    type Output = Claimed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Claimed> {
        let claim = self.get_mut().0.get_mut().unwrap_or_else(PoisonError::into_inner);
        claim.as_mut().poll(cx)
    }
}

/// A registration's request, kept while its claim is made.
pub(super) struct Entry {
    pub json_mode: bool,
    pub wanted: Option<String>,
    pub announce: bool,
    pub resume: Option<OwnedResume>,
    /// The line that registered this client as a guest before being acted on itself:
    /// it is handled again once the client is registered.
    pub replay: Option<String>,
}

/// A hello's resume part ([`Resume`]), owned.
pub(super) struct OwnedResume {
    token: String,
    last_id: u64,
    room: Option<String>,
}

impl OwnedResume {
    pub(super) fn new(resume: Resume<'_>) -> OwnedResume {
        OwnedResume {
            token: resume.token.to_owned(),
            last_id: resume.last_id,
            room: resume.room.map(str::to_owned),
        }
    }

    pub(super) fn borrow(&self) -> Resume<'_> {
        Resume { token: &self.token, last_id: self.last_id, room: self.room.as_deref() }
    }
}

/// A claim made: what it was for and what it found.
pub(super) enum Claimed {
    Entry {
        entry: Entry,
        across: Result<Across, NickChange>,
    },
    /// `session`: the session the claim was made for (`None`: the member was gone).
    Rename {
        wanted: String,
        across: Result<Across, NickChange>,
        session: Option<u64>,
    },
    /// Another round trip done ([`Session::wait_for`]): what the session does with it.
    Then(Box<dyn FnOnce(&mut Session) + Send>),
}

/// The claims of a registration: the wanted nick (or the session its resume token is
/// for), then the guest nick when the wanted one was not claimed or none was given.
pub(super) fn entry(hub: Arc<Hub>, id: u64, entry: Entry) -> Claiming {
    Claiming::new(async move {
        let token = entry.resume.as_ref().map(|r| r.token.as_str());
        let across = match entry.wanted.as_deref() {
            Some(wanted) => hub.claim_across(id, wanted, token).await,
            None => Ok(Across::No),
        };
        let adopted = matches!(across, Ok(Across::Adopted(_))) && entry.resume.is_some();
        if !adopted && !matches!(across, Ok(Across::Claimed)) {
            hub.claim_guest_across(id).await;
        }
        Claimed::Entry { entry, across }
    })
}

/// The claim of `/nick wanted`, and the session it is made for: let go by that session
/// if the member is gone by the time it is made.
pub(super) fn rename(hub: Arc<Hub>, id: u64, wanted: String) -> Claiming {
    Claiming::new(async move {
        let session = hub.session_of(id);
        let across = hub.claim_across(id, &wanted, None).await;
        Claimed::Rename { wanted, across, session }
    })
}

impl Session {
    /// The claim is done: the hub decides, and a line that waited for the registration
    /// is handled (unless `replay` is false: the session ends).
    pub(super) fn claimed(&mut self, claimed: Claimed, replay: bool) {
        match claimed {
            Claimed::Entry { entry, across } => {
                let resume = entry.resume.as_ref().map(OwnedResume::borrow);
                let wanted = entry.wanted.as_deref();
                self.enter_with(entry.json_mode, wanted, entry.announce, resume, across);
                if let Some(line) = entry.replay.filter(|_| replay) {
                    self.handle_line(Line::Text(line.into()));
                }
            }
            Claimed::Rename { wanted, across, session } => self.renamed(&wanted, across, session),
            Claimed::Then(then) => then(self),
        }
    }

    /// The session is another connection's now (resumed elsewhere, or fenced) while a
    /// claim or another round trip is in flight: it is awaited (it is bounded in time)
    /// rather than dropped half made, and a nick it claimed is let go by the session it
    /// was claimed for. Nothing else is done with it: the member is gone from this
    /// node, and the client, which was never answered, asks again where it is now.
    /// (Dropped, a claim's first key could be made after all and stay held by a session
    /// this node no longer has, keeping the nick from everyone.)
    pub(super) async fn abandon_claim(&mut self) {
        let Some(claim) = self.claim.take() else { return };
        if let Claimed::Rename { wanted, across: Ok(Across::Claimed), session: Some(session) } =
            claim.await
        {
            self.hub.release_session(session, &wanted, Some(&self.nick));
            let why = "the session continues on another node";
            self.hub.log.info("Nick claim let go", json!({"nick": wanted, "why": why}));
        }
    }

    /// Runs `work` (a round trip to NATS on a backbone), then `then` with its outcome:
    /// at once when `work` is ready when first polled (always without a backbone), else
    /// once the connection loop has awaited it, the session taking no line meanwhile,
    /// as for a claim. `work` must be bounded in time.
    pub(super) fn wait_for<T: Send + 'static>(
        &mut self,
        work: impl Future<Output = T> + Send + 'static,
        then: impl FnOnce(&mut Session, T) + Send + 'static,
    ) {
        let mut work = Box::pin(work);
        match work.as_mut().now_or_never() {
            Some(outcome) => then(self, outcome),
            None => {
                self.claim = Some(Claiming::new(async move {
                    let outcome = work.await;
                    Claimed::Then(Box::new(move |s: &mut Session| then(s, outcome)))
                }));
            }
        }
    }
}
