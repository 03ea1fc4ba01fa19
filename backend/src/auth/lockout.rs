//! Password guessing limits for `InitiateAuth`, as Cognito has them: after five wrong passwords
//! for a username, every attempt is refused ("Password attempts exceeded") for a lockout that
//! starts at one second and doubles with each further failure, up to fifteen minutes; a correct
//! password ends it. On top of that, each address may fail only so often
//! ([`ADDRESS_BURST`], then one more every [`ADDRESS_DECAY`]), so one client cannot spray a
//! password across every account.
//!
//! An attempt counts as failed from the moment it starts and is refunded if the password was
//! right, so a thousand guesses sent at once get no more tries than a thousand sent one after
//! another. `InitiateAuth` starts an attempt only once a password hasher is free to check it
//! (one per core), so attempts in flight never pile up against an address: 500 people (or
//! load-test users) signing in at once from one NAT are all let in, where counting them while
//! they queued refused all but 30. Usernames count whether or not they exist, so a lockout says
//! nothing about which accounts are real.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passwords for one username before the lockouts start (Cognito's five).
pub const FREE_FAILURES: u32 = 5;
/// The longest lockout (Cognito's fifteen minutes).
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failures one address may have in a row.
pub const ADDRESS_BURST: u32 = 30;
/// One failure of an address is forgotten this often.
pub const ADDRESS_DECAY: Duration = Duration::from_secs(6);
/// Entries kept before idle ones are dropped.
const MAX_ENTRIES: usize = 100_000;

/// Why an attempt may not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The username is locked out for `retry_after` more.
    UserLocked { retry_after: Duration },
    /// The address has failed too often; it may try again after `retry_after`.
    AddressLimited { retry_after: Duration },
}

#[derive(Debug, Clone, Copy)]
struct UserFailures {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Debug, Clone, Copy)]
struct AddressFailures {
    /// Failures not yet forgotten, as of `at`.
    level: f64,
    at: Instant,
}

impl AddressFailures {
    fn level_at(&self, now: Instant) -> f64 {
        let forgotten =
            now.saturating_duration_since(self.at).as_secs_f64() / ADDRESS_DECAY.as_secs_f64();
        (self.level - forgotten).max(0.0)
    }
}

#[derive(Debug, Default)]
struct Books {
    users: HashMap<String, UserFailures>,
    addresses: HashMap<IpAddr, AddressFailures>,
}

/// The guard every password sign-in passes.
#[derive(Debug, Default)]
pub struct SignInGuard {
    books: Mutex<Books>,
}

/// An attempt in progress: report how it ended with [`SignInGuard::succeeded`]; dropping it
/// leaves it counted as a failure.
#[derive(Debug)]
#[must_use = "report a correct password with SignInGuard::succeeded"]
pub struct Attempt {
    user: String,
    address: IpAddr,
}

/// The key of an address: IPv6 clients usually own a whole /64.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                let prefix = [segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0];
                IpAddr::V6(prefix.into())
            }
        },
    }
}

fn lockout_after(failures: u32) -> Option<Duration> {
    let beyond = failures.checked_sub(FREE_FAILURES)?;
    let secs = 1u64.checked_shl(beyond).unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_LOCKOUT))
}

impl SignInGuard {
    /// Starts an attempt for `username` from `address`, or says why it may not happen.
    pub fn begin(&self, username: &str, address: IpAddr, now: Instant) -> Result<Attempt, Refusal> {
        let user = username.trim().to_lowercase();
        let address = address_key(address);
        let mut books = self.books.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if books.users.len() + books.addresses.len() > MAX_ENTRIES {
            books.prune(now);
        }
        if let Some(entry) = books.users.get(&user)
            && let Some(until) = entry.locked_until
            && until > now
        {
            return Err(Refusal::UserLocked { retry_after: until - now });
        }
        let level = books.addresses.get(&address).map_or(0.0, |a| a.level_at(now));
        if level + 1.0 > f64::from(ADDRESS_BURST) {
            let excess = level + 1.0 - f64::from(ADDRESS_BURST);
            let retry_after = ADDRESS_DECAY.mul_f64(excess);
            return Err(Refusal::AddressLimited { retry_after });
        }
        books.addresses.insert(address, AddressFailures { level: level + 1.0, at: now });
        let entry = books.users.entry(user.clone()).or_insert(UserFailures {
            failures: 0,
            locked_until: None,
            last: now,
        });
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        entry.locked_until = lockout_after(entry.failures).map(|lock| now + lock);
        Ok(Attempt { user, address })
    }

    /// The attempt's password was right: the username's failures are forgotten, and the
    /// address gets back the failure the attempt was counted as.
    pub fn succeeded(&self, attempt: Attempt, now: Instant) {
        let mut books = self.books.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        books.users.remove(&attempt.user);
        if let Some(entry) = books.addresses.get_mut(&attempt.address) {
            entry.level = (entry.level_at(now) - 1.0).max(0.0);
            entry.at = now;
        }
    }
}

impl SignInGuard {
    /// The attempt could not check the password (the server was busy or failed): it counts
    /// neither way.
    pub fn abandoned(&self, attempt: Attempt, now: Instant) {
        let mut books = self.books.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = books.users.get_mut(&attempt.user) {
            entry.failures = entry.failures.saturating_sub(1);
            if entry.failures < FREE_FAILURES {
                entry.locked_until = None;
            }
        }
        if let Some(entry) = books.addresses.get_mut(&attempt.address) {
            entry.level = (entry.level_at(now) - 1.0).max(0.0);
            entry.at = now;
        }
    }
}

impl Books {
    /// Drops what no longer limits anyone; when that is not enough, keeps only live lockouts.
    fn prune(&mut self, now: Instant) {
        self.users.retain(|_, u| now.saturating_duration_since(u.last) < MAX_LOCKOUT);
        self.addresses.retain(|_, a| a.level_at(now) > 0.0);
        if self.users.len() + self.addresses.len() > MAX_ENTRIES {
            self.users.retain(|_, u| u.locked_until.is_some_and(|until| until > now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn fail(guard: &SignInGuard, user: &str, from: IpAddr, now: Instant) -> Result<(), Refusal> {
        guard.begin(user, from, now).map(drop)
    }

    #[test]
    fn five_failures_are_free_then_lockouts_double_up_to_fifteen_minutes() {
        let guard = SignInGuard::default();
        let start = Instant::now();
        let other = |n: u8| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, n));
        for n in 0..4 {
            fail(&guard, "alice", other(n), start).expect("failures one to four are free");
        }
        fail(&guard, "Alice ", other(4), start).expect("the fifth is tried (and fails)");
        let locked = guard.begin("alice", other(5), start).expect_err("then a lockout");
        assert_eq!(locked, Refusal::UserLocked { retry_after: Duration::from_secs(1) });
        let halfway = start + Duration::from_millis(500);
        assert!(guard.begin("alice", other(6), halfway).is_err(), "still locked halfway");
        // Walk the doubling: each failure after the lockout ends locks twice as long.
        let mut now = start + Duration::from_secs(1);
        for secs in [2u64, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900] {
            fail(&guard, "alice", other(7), now).expect("tried once the lockout is over");
            let refused = guard.begin("alice", other(7), now).expect_err("locked again");
            assert_eq!(refused, Refusal::UserLocked { retry_after: Duration::from_secs(secs) });
            now += Duration::from_secs(secs);
        }
    }

    #[test]
    fn a_correct_password_ends_the_count_but_not_during_a_lockout() {
        let guard = SignInGuard::default();
        let now = Instant::now();
        for _ in 0..4 {
            fail(&guard, "bob", HOME, now).unwrap();
        }
        let right = guard.begin("bob", HOME, now).unwrap();
        guard.succeeded(right, now);
        for _ in 0..4 {
            fail(&guard, "bob", HOME, now).expect("the count started again");
        }
        fail(&guard, "bob", HOME, now).unwrap();
        assert!(guard.begin("bob", HOME, now).is_err(), "even the right password waits");
    }

    #[test]
    fn an_attempt_the_server_could_not_check_counts_neither_way() {
        let guard = SignInGuard::default();
        let now = Instant::now();
        for _ in 0..4 {
            fail(&guard, "dan", HOME, now).unwrap();
        }
        let busy = guard.begin("dan", HOME, now).unwrap();
        guard.abandoned(busy, now);
        fail(&guard, "dan", HOME, now).expect("the fifth real failure is still tried");
        assert!(guard.begin("dan", HOME, now).is_err());
    }

    #[test]
    fn parallel_guesses_get_no_more_tries_than_serial_ones() {
        let guard = SignInGuard::default();
        let now = Instant::now();
        let started: Vec<_> =
            (0..100).filter_map(|_| guard.begin("carol", HOME, now).ok()).collect();
        assert_eq!(started.len(), FREE_FAILURES as usize, "none of them has failed yet");
    }

    #[test]
    fn an_address_may_spray_only_so_many_accounts() {
        let guard = SignInGuard::default();
        let now = Instant::now();
        for n in 0..ADDRESS_BURST {
            fail(&guard, &format!("user{n}"), HOME, now).expect("within the burst");
        }
        let refused = guard.begin("someone-else", HOME, now).expect_err("the address is limited");
        assert_eq!(refused, Refusal::AddressLimited { retry_after: ADDRESS_DECAY });
        let neighbour = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
        assert!(guard.begin("someone-else", neighbour, now).is_ok(), "other addresses are not");
        let later = now + ADDRESS_DECAY;
        assert!(guard.begin("someone-else", HOME, later).is_ok(), "one failure forgotten");
        assert!(guard.begin("another", HOME, later).is_err(), "and only one");
    }

    #[test]
    fn successes_never_count_against_an_address() {
        let guard = SignInGuard::default();
        let now = Instant::now();
        for n in 0..10 * ADDRESS_BURST {
            let attempt = guard.begin(&format!("user{n}"), HOME, now).expect("never limited");
            guard.succeeded(attempt, now);
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), HOME, "an IPv4 client on a dual-stack socket");
    }
}
