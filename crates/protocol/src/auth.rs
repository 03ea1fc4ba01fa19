//! Account rules shared by the server (which enforces them, as Cognito does) and the UI (which
//! explains them while the person types): Cognito's default password policy, usernames, email.

/// Shortest password Cognito's default policy accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password Cognito accepts.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest username Cognito accepts.
pub const MAX_USERNAME_CHARS: usize = 128;

/// Characters Cognito counts as symbols (a space inside the password counts too).
pub const PASSWORD_SYMBOLS: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ";

/// The first rule of the default policy a password breaks, in Cognito's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("Use at least {MIN_PASSWORD_CHARS} characters.")]
    TooShort,
    #[error("Use at most {MAX_PASSWORD_CHARS} characters.")]
    TooLong,
    #[error("Passwords cannot start or end with a space.")]
    EdgeWhitespace,
    #[error("Add a lowercase letter (a–z).")]
    NoLowercase,
    #[error("Add an uppercase letter (A–Z).")]
    NoUppercase,
    #[error("Add a digit (0–9).")]
    NoDigit,
    #[error("Add a symbol, such as ! ? # or %.")]
    NoSymbol,
}

impl PasswordProblem {
    /// The message Cognito sends with `InvalidPasswordException` for this rule.
    pub fn cognito_message(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => {
                "Password did not conform with policy: Password not long enough"
            }
            PasswordProblem::TooLong => {
                "Password did not conform with policy: Password is too long"
            }
            PasswordProblem::EdgeWhitespace => {
                "Password did not conform with policy: Password must not begin or end with whitespace"
            }
            PasswordProblem::NoLowercase => {
                "Password did not conform with policy: Password must have lowercase characters"
            }
            PasswordProblem::NoUppercase => {
                "Password did not conform with policy: Password must have uppercase characters"
            }
            PasswordProblem::NoDigit => {
                "Password did not conform with policy: Password must have numeric characters"
            }
            PasswordProblem::NoSymbol => {
                "Password did not conform with policy: Password must have symbol characters"
            }
        }
    }
}

/// Checks a password against Cognito's default policy (8+ characters, a lowercase and an
/// uppercase ASCII letter, an ASCII digit and a symbol).
pub fn password_problem(password: &str) -> Option<PasswordProblem> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some(PasswordProblem::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(PasswordProblem::TooLong);
    }
    if password.starts_with(char::is_whitespace) || password.ends_with(char::is_whitespace) {
        return Some(PasswordProblem::EdgeWhitespace);
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        return Some(PasswordProblem::NoLowercase);
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(PasswordProblem::NoUppercase);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Some(PasswordProblem::NoDigit);
    }
    if !password.chars().any(|c| PASSWORD_SYMBOLS.contains(c)) {
        return Some(PasswordProblem::NoSymbol);
    }
    None
}

/// Why a username is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameProblem {
    #[error("Choose a username.")]
    Empty,
    #[error("Usernames can be at most {MAX_USERNAME_CHARS} characters.")]
    TooLong,
    #[error("Usernames cannot contain spaces or control characters.")]
    Whitespace,
    /// `Google_…` and the like name people who sign in through that provider.
    #[error(
        "Usernames cannot start with a sign-in provider's name and an underscore (such as \
         Google_); those name people who sign in with that provider."
    )]
    ReservedPrefix,
}

/// The prefixes of the user-pool users that Cognito creates for people who sign in through an
/// identity provider (`Google_<subject>`), ours included; a password user never gets one, so
/// the two never collide.
pub const PROVIDER_PREFIXES: [&str; 5] =
    ["Google_", "Facebook_", "LoginWithAmazon_", "SignInWithApple_", "TestIdP_"];

/// Cognito's username rule: 1–128 characters, no whitespace or control characters; and not the
/// name of a federated user.
pub fn username_problem(username: &str) -> Option<UsernameProblem> {
    if username.is_empty() {
        Some(UsernameProblem::Empty)
    } else if username.chars().count() > MAX_USERNAME_CHARS {
        Some(UsernameProblem::TooLong)
    } else if username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(UsernameProblem::Whitespace)
    } else if PROVIDER_PREFIXES.iter().any(|prefix| {
        username.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    }) {
        Some(UsernameProblem::ReservedPrefix)
    } else {
        None
    }
}

/// A plausible email address: one `@`, something before it, a dotted domain after it, no spaces.
/// (Deliverability is not checkable here; users are auto-confirmed.)
pub fn email_is_plausible(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && email.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_reports_the_first_broken_rule() {
        assert_eq!(password_problem("Aa1!"), Some(PasswordProblem::TooShort));
        assert_eq!(password_problem("AAAAAAA1!"), Some(PasswordProblem::NoLowercase));
        assert_eq!(password_problem("aaaaaaa1!"), Some(PasswordProblem::NoUppercase));
        assert_eq!(password_problem("Aaaaaaaa!"), Some(PasswordProblem::NoDigit));
        assert_eq!(password_problem("Aaaaaaaa1"), Some(PasswordProblem::NoSymbol));
        assert_eq!(password_problem(" Aaaaaa1!"), Some(PasswordProblem::EdgeWhitespace));
        assert_eq!(
            password_problem(&format!("Aa1!{}", "x".repeat(253))),
            Some(PasswordProblem::TooLong)
        );
        assert_eq!(password_problem("Correct Horse 9"), None, "an inner space is a symbol");
        assert_eq!(password_problem("Passw0rd!"), None);
        assert_eq!(
            password_problem("Pässwörd1ü"),
            Some(PasswordProblem::NoSymbol),
            "ü is no symbol"
        );
    }

    #[test]
    fn cognito_messages_match_the_service() {
        assert_eq!(
            PasswordProblem::TooShort.cognito_message(),
            "Password did not conform with policy: Password not long enough"
        );
        assert!(PasswordProblem::NoSymbol.cognito_message().ends_with("symbol characters"));
    }

    #[test]
    fn usernames_and_emails() {
        assert_eq!(username_problem(""), Some(UsernameProblem::Empty));
        assert_eq!(username_problem("a b"), Some(UsernameProblem::Whitespace));
        assert_eq!(username_problem(&"x".repeat(129)), Some(UsernameProblem::TooLong));
        assert_eq!(username_problem("zoë"), None);
        for federated in ["Google_1098", "google_x", "TESTIDP_alice", "Facebook_", "testidp_"] {
            assert_eq!(username_problem(federated), Some(UsernameProblem::ReservedPrefix));
        }
        for fine in ["Google", "googler_x", "TestIdP", "ab", "é"] {
            assert_eq!(username_problem(fine), None, "{fine}");
        }
        assert!(email_is_plausible("a@example.com"));
        for bad in ["", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b@c.d", "a@.b", "a@b."] {
            assert!(!email_is_plausible(bad), "{bad:?}");
        }
    }
}
