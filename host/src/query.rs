//! The list query language (`GET /v1/runs?q=…`, `weft runs --query`): a
//! run's fields and its search attributes compared with values, combined
//! with AND, OR, NOT and parentheses.
//!
//! ```text
//! region = 'eu-west' AND (cells > 2 OR workflow IN ('rollout', 'rollout-v2'))
//! ring >= 1 AND NOT status = 'running'
//! cell STARTS_WITH 'eu-'
//! ```
//!
//! Fields `workflow`, `workflow_id`, `run_id`, `status`, `start_time` and
//! `close_time` (ms since the epoch, or RFC 3339 in quotes) are the run's;
//! any other name is a search attribute (a run without it matches no
//! condition on it). Keywords are case-insensitive. Errors name the
//! position (1-based character) where the query stops making sense.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { field: Field, op: Op, value: Value },
    In { field: Field, values: Vec<Value> },
    StartsWith { field: Field, prefix: String },
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A column of the run: `workflow`, `workflow_id`, `run_id`, `status`.
    Text(&'static str),
    /// A time column of the run, in ms: `created_at_ms`, `ended_at_ms`.
    Time(&'static str),
    /// A search attribute.
    Attribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => " = ",
            Op::Ne => " <> ",
            Op::Lt => " < ",
            Op::Gt => " > ",
            Op::Le => " <= ",
            Op::Ge => " >= ",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Op(Op),
    Open,
    Close,
    Comma,
}

/// The longest query accepted.
const MAX_LEN: usize = 4096;

pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_LEN {
        return Err(format!("a query is at most {MAX_LEN} bytes"));
    }
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: text.chars().count() + 1,
    };
    let expr = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some((at, token)) => Err(format!("at {at}: unexpected {}", describe(token))),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("`{w}`"),
        Token::Str(s) => format!("'{s}'"),
        Token::Num(n) => format!("{n}"),
        Token::Op(_) => "an operator".into(),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

/// Tokens with their 1-based character positions.
fn lex(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                tokens.push((
                    at,
                    match c {
                        '(' => Token::Open,
                        ')' => Token::Close,
                        _ => Token::Comma,
                    },
                ));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', _) => (Op::Eq, 1),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => return Err(format!("at {at}: `!` must be followed by `=`")),
                };
                tokens.push((at, Token::Op(op)));
                i += len;
            }
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("at {at}: the string is not closed")),
                        // A doubled quote is one quote.
                        Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                            s.push(c);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                tokens.push((at, Token::Str(s)));
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| format!("at {at}: `{text}` is not a number"))?;
                tokens.push((at, Token::Num(n)));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    i += 1;
                }
                tokens.push((at, Token::Word(chars[start..i].iter().collect())));
            }
            other => return Err(format!("at {at}: unexpected `{other}`")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    /// The position just past the query, for "expected … at the end".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expected(&self, what: &str) -> String {
        match self.tokens.get(self.pos) {
            Some((at, token)) => format!("at {at}: expected {what}, found {}", describe(token)),
            None => format!("at {}: expected {what} at the end", self.end),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return Err(self.expected("`)`"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Expr, String> {
        let field = match self.peek() {
            Some(Token::Word(w))
                if !["and", "or", "not", "in", "starts_with"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                field(w)
            }
            _ => return Err(self.expected("a field name")),
        };
        self.pos += 1;
        if self.keyword("in") {
            self.pos += 1;
            if self.peek() != Some(&Token::Open) {
                return Err(self.expected("`(`"));
            }
            self.pos += 1;
            let mut values = vec![self.value(&field)?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                values.push(self.value(&field)?);
            }
            if self.peek() != Some(&Token::Close) {
                return Err(self.expected("`,` or `)`"));
            }
            self.pos += 1;
            return Ok(Expr::In { field, values });
        }
        if self.keyword("starts_with") {
            self.pos += 1;
            return match self.peek().cloned() {
                Some(Token::Str(prefix)) => {
                    self.pos += 1;
                    Ok(Expr::StartsWith { field, prefix })
                }
                _ => Err(self.expected("a quoted prefix")),
            };
        }
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(self.expected("an operator (=, !=, <, >, <=, >=, IN, STARTS_WITH)")),
        };
        self.pos += 1;
        let value = self.value(&field)?;
        Ok(Expr::Compare { field, op, value })
    }

    /// A literal; a time field's is ms since the epoch (RFC 3339 text is
    /// converted).
    fn value(&mut self, field: &Field) -> Result<Value, String> {
        let at = self.at();
        let value = match self.peek().cloned() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Num(n)) => serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| format!("at {at}: not a finite number"))?,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(self.expected("a value ('text', a number, true or false)")),
        };
        self.pos += 1;
        if let (Field::Time(_), Value::String(s)) = (field, &value) {
            let ms = s
                .parse::<jiff::Timestamp>()
                .map_err(|_| format!("at {at}: `{s}` is not an RFC 3339 time"))?
                .as_millisecond();
            return Ok(Value::from(ms));
        }
        Ok(value)
    }
}

fn field(name: &str) -> Field {
    match name {
        "workflow" => Field::Text("workflow"),
        "workflow_id" => Field::Text("workflow_id"),
        "run_id" => Field::Text("run_id"),
        "status" => Field::Text("status"),
        "start_time" => Field::Time("created_at_ms"),
        "close_time" => Field::Time("ended_at_ms"),
        other => Field::Attribute(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attr(name: &str) -> Field {
        Field::Attribute(name.into())
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let parsed = parse("a = 1 OR b = 'x' and not c != true").unwrap();
        let b = Expr::Compare {
            field: attr("b"),
            op: Op::Eq,
            value: json!("x"),
        };
        let c = Expr::Not(Box::new(Expr::Compare {
            field: attr("c"),
            op: Op::Ne,
            value: json!(true),
        }));
        let a = Expr::Compare {
            field: attr("a"),
            op: Op::Eq,
            value: json!(1.0),
        };
        assert_eq!(
            parsed,
            Expr::Or(Box::new(a), Box::new(Expr::And(Box::new(b), Box::new(c))))
        );
        assert!(matches!(
            parse("(a = 1 OR b = 2) AND c = 3").unwrap(),
            Expr::And(..)
        ));
    }

    #[test]
    fn in_starts_with_fields_and_times() {
        assert_eq!(
            parse("region IN ('eu', \"us\")").unwrap(),
            Expr::In {
                field: attr("region"),
                values: vec![json!("eu"), json!("us")]
            }
        );
        assert_eq!(
            parse("cell starts_with 'eu-'").unwrap(),
            Expr::StartsWith {
                field: attr("cell"),
                prefix: "eu-".into()
            }
        );
        assert_eq!(
            parse("start_time >= '2026-01-01T00:00:00Z'").unwrap(),
            Expr::Compare {
                field: Field::Time("created_at_ms"),
                op: Op::Ge,
                value: json!(1767225600000i64)
            }
        );
        assert_eq!(
            parse("status = 'it''s'").unwrap(),
            Expr::Compare {
                field: Field::Text("status"),
                op: Op::Eq,
                value: json!("it's")
            }
        );
    }

    #[test]
    fn errors_name_the_position() {
        for (query, error) in [
            ("region = ", "at 10: expected a value"),
            (
                "region = 'eu' AND",
                "at 18: expected a field name at the end",
            ),
            ("region 'eu'", "at 8: expected an operator"),
            ("(a = 1", "at 7: expected `)` at the end"),
            ("a = 'open", "at 5: the string is not closed"),
            ("a = 1 b = 2", "at 7: unexpected `b`"),
            ("a ! 1", "at 3: `!` must be followed by `=`"),
            ("a IN (1 2)", "at 9: expected `,` or `)`"),
            (
                "start_time > 'yesterday'",
                "at 14: `yesterday` is not an RFC 3339 time",
            ),
        ] {
            let got = parse(query).unwrap_err();
            assert!(got.starts_with(error), "{query}: {got}");
        }
    }
}
