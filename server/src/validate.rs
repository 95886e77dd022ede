//! Field validation that produces [`FieldError`]s; handlers collect them and answer 422 at once.

use crate::error::{ApiError, FieldError};

/// Collects field errors for one request.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.errors.push(FieldError::new(field, message));
        }
        self
    }

    /// A trimmed, non-empty string of at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> &mut Self {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.errors
                .push(FieldError::new(field, "must not be empty"));
        } else if trimmed.chars().count() > max {
            self.errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        self
    }

    pub fn email(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(is_email(value), field, "must be an email address")
    }

    pub fn slug(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(
            is_slug(value),
            field,
            "must be 1-100 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        )
    }

    pub fn password(&mut self, field: &str, value: &str) -> &mut Self {
        let len = value.chars().count();
        self.check(
            (8..=256).contains(&len),
            field,
            "must be between 8 and 256 characters",
        )
    }

    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(std::mem::take(&mut self.errors)))
        }
    }
}

/// Deliberately loose: one `@`, a non-empty local part, a dotted domain, no spaces. The real
/// check is the verification email.
pub fn is_email(value: &str) -> bool {
    let value = value.trim();
    if value.len() > 255 || value.chars().any(char::is_whitespace) {
        return false;
    }
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

pub fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("ada@example.com"));
        assert!(is_email(" Ada.L+x@ex.co.uk "));
        for bad in [
            "",
            "ada",
            "ada@",
            "@ex.com",
            "a@b",
            "a b@ex.com",
            "a@@ex.com",
            "a@ex.com.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert!(is_slug("acme-2"));
        for bad in ["", "Acme", "-acme", "acme-", "ac me", "acmé"] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn validator_collects_every_field() {
        let err = Validator::new()
            .email("email", "nope")
            .password("password", "short")
            .text("full_name", "  ", 255)
            .finish()
            .expect_err("invalid");
        let fields: Vec<_> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "full_name"]);
    }
}
