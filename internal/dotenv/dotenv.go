// Package dotenv reads and writes env files with the rules Docker Compose v2
// applies to a service's env_file (compose-go's dotenv parser), so a value
// written by Serialize reaches the container's environment byte for byte.
//
// Parse accepts what compose accepts, with two deliberate differences: it
// never interpolates (`$` is always literal; `\$` in double quotes also
// gives `$`), and it rejects lines compose would silently reinterpret
// (a bare KEY without `=`, keys that are not portable shell names, text
// after a closing quote).
//
// The rules were checked against compose-go v2.9.1 (Docker Compose v2.40)
// and, for CompatV1, python-dotenv 0.21 (docker-compose 1.29.2); see
// e2e/dotenv_test.go for the proof with real compose and containers.
package dotenv

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Entry is one KEY=VALUE pair.
type Entry struct {
	Key, Value string
}

// Error is a syntax error in an env file; Line is 1-based.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Hint tells the user how to fix the file.
func (e *Error) Hint() string {
	return "each line must be KEY=VALUE (KEY: letters, digits, _; not starting with a digit); " +
		"quote values with spaces, quotes or newlines: 'single' is literal (write ' as \\'), \"double\" understands \\n \\\" \\\\ \\$"
}

// ValueError reports an entry that cannot be written to an env file.
type ValueError struct {
	Key string
	Msg string
}

func (e *ValueError) Error() string { return fmt.Sprintf("env %q: %s", e.Key, e.Msg) }

// Hint tells the user how to fix the entry.
func (e *ValueError) Hint() string {
	return "environment keys are letters, digits and _ (not starting with a digit); values must be valid UTF-8 without NUL bytes"
}

// ValidKey reports whether k is a portable environment variable name:
// [A-Za-z_][A-Za-z0-9_]*. Compose accepts more (dots, dashes, unicode), but
// such names cannot be used from a shell and docker-compose v1 differs.
func ValidKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// CheckEntry returns a *ValueError when e cannot be carried by an env file
// into a process environment: invalid key, NUL byte (execve cannot pass it)
// or invalid UTF-8 (the Docker API is JSON and would replace it).
func CheckEntry(e Entry) error {
	if !ValidKey(e.Key) {
		return &ValueError{Key: e.Key, Msg: "invalid variable name"}
	}
	if strings.IndexByte(e.Value, 0) >= 0 {
		return &ValueError{Key: e.Key, Msg: "value contains a NUL byte, which no process environment can hold"}
	}
	if !utf8.ValidString(e.Value) {
		return &ValueError{Key: e.Key, Msg: "value is not valid UTF-8"}
	}
	return nil
}

// Parse reads an env file. Duplicate keys: the last value wins (as in
// compose) and the entry keeps the position of the first occurrence.
// Syntax errors are *Error with the line number.
func Parse(data []byte) ([]Entry, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	p := &parser{src: string(data), line: 1}
	var out []Entry
	index := map[string]int{}
	for {
		e, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		if i, dup := index[e.Key]; dup {
			out[i].Value = e.Value
			continue
		}
		index[e.Key] = len(out)
		out = append(out, e)
	}
}

type parser struct {
	src  string
	pos  int
	line int
}

// errorf never quotes the file's text: env files hold secrets, and a
// broken multi-line value can make any part of one look like a key.
func (p *parser) errorf(line int, format string, args ...any) error {
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// skipBlank skips whitespace (any Unicode space, like compose-go) and
// whole comment lines.
func (p *parser) skipBlank() {
	for p.pos < len(p.src) {
		r, size := utf8.DecodeRuneInString(p.src[p.pos:])
		switch {
		case r == '\n':
			p.line++
			p.pos++
		case unicode.IsSpace(r):
			p.pos += size
		case r == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

// isSpace is compose-go's in-line space set: what it trims after "export"
// and "=" and between a closing quote and the next statement.
func isSpace(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return false
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		r, size := utf8.DecodeRuneInString(p.src[p.pos:])
		if !isSpace(r) {
			return
		}
		p.pos += size
	}
}

// restOfLine returns the text up to (not including) the next newline and
// moves past the newline.
func (p *parser) restOfLine() string {
	end := strings.IndexByte(p.src[p.pos:], '\n')
	var s string
	if end < 0 {
		s, p.pos = p.src[p.pos:], len(p.src)
	} else {
		s, p.pos = p.src[p.pos:p.pos+end], p.pos+end+1
		p.line++
	}
	return s
}

func (p *parser) next() (Entry, bool, error) {
	p.skipBlank()
	if p.pos >= len(p.src) {
		return Entry{}, false, nil
	}
	start := p.line
	rest := p.src[p.pos:]
	if strings.HasPrefix(rest, "export") && len(rest) > 6 && strings.IndexByte("\t\f\r ", rest[6]) >= 0 {
		p.pos += 6
		p.skipSpace()
	}
	eq := strings.IndexAny(p.src[p.pos:], "=\n")
	if eq < 0 || p.src[p.pos+eq] != '=' {
		return Entry{}, false, p.errorf(start, "expected KEY=VALUE (a line without \"=\")")
	}
	key := strings.TrimRightFunc(p.src[p.pos:p.pos+eq], unicode.IsSpace)
	if !ValidKey(key) {
		return Entry{}, false, p.errorf(start, "invalid variable name before \"=\"")
	}
	p.pos += eq + 1
	p.skipSpace()
	var value string
	var err error
	if p.pos < len(p.src) && (p.src[p.pos] == '\'' || p.src[p.pos] == '"') {
		value, err = p.quoted(start)
	} else {
		value = p.unquoted()
	}
	if err != nil {
		return Entry{}, false, err
	}
	e := Entry{Key: key, Value: value}
	if err := CheckEntry(e); err != nil {
		return Entry{}, false, p.errorf(start, "%s", err.(*ValueError).Msg)
	}
	return e, true, nil
}

// unquoted reads to the end of the line, drops an inline " #" comment and
// trailing whitespace, as compose does.
func (p *parser) unquoted() string {
	v := p.restOfLine()
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimRightFunc(v, unicode.IsSpace)
}

// quoted reads a single- or double-quoted value that may span lines.
// Single quotes: literal, except \' which gives ' (compose-go does this).
// Double quotes: \n \r \t \a \b \f \v \\ \" \$ and \0NNN (octal) are
// escapes; any other backslash is kept literally (compose-go does the same).
func (p *parser) quoted(start int) (string, error) {
	q := p.src[p.pos]
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == q:
			return b.String(), p.afterQuote(start)
		case c == '\n':
			p.line++
			b.WriteByte(c)
		case c == '\\' && p.pos < len(p.src):
			// Like compose-go, a backslash always pairs with the next byte.
			n := p.src[p.pos]
			p.pos++
			if n == '\n' {
				p.line++
			}
			if q == '\'' {
				if n != '\'' {
					b.WriteByte('\\')
				}
				b.WriteByte(n)
				continue
			}
			if r, ok := doubleEscapes[n]; ok {
				b.WriteByte(r)
			} else if n == '0' {
				p.octal(&b)
			} else {
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf(start, "unterminated %c-quoted value (add the closing %c)", q, q)
}

// octal handles compose-go's \0NNN escape (after "\0"): exactly three
// octal digits up to 377 give that code point; otherwise compose-go drops
// the 0 and keeps the backslash and the (up to three) digits.
func (p *parser) octal(b *strings.Builder) {
	start := p.pos
	for p.pos < len(p.src) && p.pos-start < 3 && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	digits := p.src[start:p.pos]
	if len(digits) == 3 {
		if v, err := strconv.ParseUint(digits, 8, 16); err == nil && v <= 0o377 {
			b.WriteRune(rune(v))
			return
		}
	}
	b.WriteString(`\` + digits)
}

var doubleEscapes = map[byte]byte{
	'n': '\n', 'r': '\r', 't': '\t', 'a': '\a', 'b': '\b', 'f': '\f', 'v': '\v',
	'\\': '\\', '"': '"', '$': '$',
}

// afterQuote allows only whitespace and a # comment after a closing quote;
// compose would read anything else as the start of the next variable.
func (p *parser) afterQuote(start int) error {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil
	}
	switch p.src[p.pos] {
	case '\n':
		p.pos++
		p.line++
		return nil
	case '#':
		p.restOfLine()
		return nil
	}
	return p.errorf(p.line, "unexpected text after the closing quote")
}
