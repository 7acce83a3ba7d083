//! End users' feedback on a visit: 1 to 5 stars and a comment, once per ticket, given on the
//! tracking page after the visit is completed.

use serde::Serialize;
use utoipa::ToSchema;

/// Longest comment kept.
pub const MAX_COMMENT_CHARS: usize = 2000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feedback {
    /// 1 (poor) to 5 (excellent).
    pub rating: i64,
    pub comment: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// Why feedback was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The rating is not 1 to 5.
    Rating,
    /// The comment is too long.
    Comment,
    /// Feedback was already given.
    AlreadyGiven,
}

/// Checks a submitted rating and comment.
pub fn parse(rating: &str, comment: &str) -> Result<(i64, String), Refusal> {
    let rating: i64 = rating.trim().parse().map_err(|_| Refusal::Rating)?;
    if !(1..=5).contains(&rating) {
        return Err(Refusal::Rating);
    }
    let comment = comment.trim();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(Refusal::Comment);
    }
    Ok((rating, comment.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_and_comments() {
        assert_eq!(parse("4", "  great  "), Ok((4, "great".into())));
        assert_eq!(parse("1", ""), Ok((1, String::new())));
        for bad in ["0", "6", "", "four", "4.5", "-1"] {
            assert_eq!(parse(bad, ""), Err(Refusal::Rating), "{bad:?}");
        }
        let long = "x".repeat(MAX_COMMENT_CHARS + 1);
        assert_eq!(parse("5", &long), Err(Refusal::Comment));
    }
}
