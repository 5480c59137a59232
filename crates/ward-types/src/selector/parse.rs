//! The selector language's lexer and parser.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    And,
    Word,
    In,
    NotIn,
    Matches,
    Bool,
    Num,
    Str,
    Bad,
    End,
}

#[derive(Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based character position.
    pub(super) at: usize,
    /// The value: a word, a string's contents, a keyword in lower case.
    pub(super) text: String,
    /// As written, for error messages.
    pub(super) raw: String,
}

pub(super) struct Lexer {
    pub(super) chars: Vec<char>,
    pub(super) i: usize,
    pub(super) param: &'static str,
}

pub(super) fn ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

pub(super) fn ident_tail(c: char) -> bool {
    c == '_' || c == '.' || c == '/' || c.is_alphanumeric()
}

impl Lexer {
    pub(super) fn error(
        &self,
        at: usize,
        expected: &'static str,
        found: Option<&str>,
    ) -> SelectorError {
        SelectorError {
            param: self.param,
            at,
            expected,
            found: describe(found),
        }
    }

    pub(super) fn next(&mut self) -> Result<Token, SelectorError> {
        while self.chars.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
        let start = self.i;
        let at = start + 1;
        let Some(&c) = self.chars.get(start) else {
            return Ok(Token {
                tok: Tok::End,
                at,
                text: String::new(),
                raw: String::new(),
            });
        };
        let next = self.chars.get(start + 1).copied();
        let (tok, len) = match (c, next) {
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('&', Some('&')) => (Tok::And, 2),
            ('"' | '\'', _) => return self.string(c),
            (c, _) if ident_start(c) => return self.word(),
            (c, _) if c.is_ascii_digit() => return Ok(self.number()),
            _ => (Tok::Bad, 1),
        };
        self.i += len;
        let raw: String = self.chars[start..self.i].iter().collect();
        Ok(Token {
            tok,
            at,
            text: raw.clone(),
            raw,
        })
    }

    pub(super) fn string(&mut self, quote: char) -> Result<Token, SelectorError> {
        let start = self.i;
        let Some(len) = self.chars[start + 1..].iter().position(|&c| c == quote) else {
            return Err(self.error(start + 1, EXPECT_CLOSE, None));
        };
        let end = start + 1 + len;
        self.i = end + 1;
        Ok(Token {
            tok: Tok::Str,
            at: start + 1,
            text: self.chars[start + 1..end].iter().collect(),
            raw: self.chars[start..self.i].iter().collect(),
        })
    }

    /// A bare value starting with a digit (`2`, `10.0.0.1`), which Sensu makes you quote.
    pub(super) fn number(&mut self) -> Token {
        let start = self.i;
        while self.chars.get(self.i).is_some_and(|&c| ident_tail(c)) {
            self.i += 1;
        }
        let text: String = self.chars[start..self.i].iter().collect();
        Token {
            tok: Tok::Num,
            at: start + 1,
            raw: text.clone(),
            text,
        }
    }

    pub(super) fn word(&mut self) -> Result<Token, SelectorError> {
        let start = self.i;
        while let Some(&c) = self.chars.get(self.i) {
            if !ident_tail(c) {
                break;
            }
            self.i += 1;
            if c == '.' {
                // Each dotted segment must start like a name (as in Sensu's lexer).
                match self.chars.get(self.i) {
                    Some(&n) if ident_start(n) => {}
                    Some(n) => {
                        return Err(self.error(self.i + 1, EXPECT_DOT, Some(&n.to_string())));
                    }
                    None => return Err(self.error(self.i + 1, EXPECT_DOT, None)),
                }
            }
        }
        let raw: String = self.chars[start..self.i].iter().collect();
        let lower = raw.to_lowercase();
        let tok = match lower.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            "matches" => Tok::Matches,
            "true" | "false" => Tok::Bool,
            _ => Tok::Word,
        };
        let text = if tok == Tok::Word { raw.clone() } else { lower };
        Ok(Token {
            tok,
            at: start + 1,
            text,
            raw,
        })
    }
}

/// Quotes what was found for an error message, briefly and on one line.
pub(super) fn describe(found: Option<&str>) -> String {
    match found {
        None => "end of input".to_string(),
        Some(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("{:?}…", cut)
            } else {
                format!("{s:?}")
            }
        }
    }
}

pub(super) struct Parser {
    pub(super) lexer: Lexer,
    pub(super) peeked: Option<Token>,
}

impl Parser {
    pub(super) fn next(&mut self) -> Result<Token, SelectorError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    pub(super) fn peek(&mut self) -> Result<&Token, SelectorError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next()?,
        };
        Ok(self.peeked.insert(t))
    }

    pub(super) fn unexpected(&self, t: &Token, expected: &'static str) -> SelectorError {
        let found = (t.tok != Tok::End).then_some(t.raw.as_str());
        self.lexer.error(t.at, expected, found)
    }

    pub(super) fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        let mut after_and = false;
        loop {
            let t = self.next()?;
            let key = match t.tok {
                Tok::End if !after_and && requirements.is_empty() => break,
                Tok::Word | Tok::Str => t.text,
                _ => return Err(self.unexpected(&t, EXPECT_KEY)),
            };
            let t = self.next()?;
            let operator = match t.tok {
                Tok::Eq => Operator::Equals,
                Tok::Ne => Operator::NotEquals,
                Tok::In => Operator::In,
                Tok::NotIn => Operator::NotIn,
                Tok::Matches => Operator::Matches,
                _ => return Err(self.unexpected(&t, EXPECT_OP)),
            };
            let values = match operator {
                Operator::In | Operator::NotIn => self.list()?,
                _ => {
                    let t = self.next()?;
                    match t.tok {
                        Tok::Word | Tok::Str | Tok::Bool | Tok::Num | Tok::Matches => vec![t.text],
                        _ => return Err(self.unexpected(&t, EXPECT_VALUE)),
                    }
                }
            };
            requirements.push(Requirement {
                key,
                operator,
                values,
            });
            after_and = match self.peek()?.tok {
                Tok::End => break,
                Tok::And => {
                    self.next()?;
                    true
                }
                // Sensu also takes requirements written one after another without `&&`.
                Tok::Word | Tok::Str => false,
                _ => {
                    let t = self.next()?;
                    return Err(self.unexpected(&t, EXPECT_NEXT));
                }
            };
        }
        Ok(Selector { requirements })
    }

    /// `[a, b, …]` or a single value. As in Sensu, commas are optional separators.
    pub(super) fn list(&mut self) -> Result<Vec<String>, SelectorError> {
        let t = self.next()?;
        match t.tok {
            Tok::Word | Tok::Str | Tok::Bool | Tok::Num => return Ok(vec![t.text]),
            Tok::LBracket => {}
            _ => return Err(self.unexpected(&t, EXPECT_LIST)),
        }
        let mut values = Vec::new();
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::RBracket => return Ok(values),
                Tok::Comma => {}
                Tok::Word | Tok::Str | Tok::Bool | Tok::Num | Tok::Matches => values.push(t.text),
                _ => return Err(self.unexpected(&t, EXPECT_ITEM)),
            }
        }
    }
}
