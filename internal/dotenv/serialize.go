package dotenv

import (
	"regexp"
	"strings"
	"unicode"
)

// Serialize writes entries, one per line, in the given order, choosing for
// each value the form Docker Compose v2 reads back unchanged (see quote).
// An entry CheckEntry rejects (invalid name, NUL byte, invalid UTF-8) is an
// error, a *ValueError naming the key: no env file can carry it, and
// writing it anyway would corrupt the value silently.
func Serialize(entries []Entry) ([]byte, error) {
	var b strings.Builder
	for _, e := range entries {
		if err := CheckEntry(e); err != nil {
			return nil, err
		}
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(quote(e.Value))
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// SerializeChecked is Serialize.
//
// Deprecated: Serialize returns the error itself now.
func SerializeChecked(entries []Entry) ([]byte, error) { return Serialize(entries) }

// plain values are written bare: compose-go and python-dotenv both read
// them verbatim (no space, quote, #, $ or backslash).
var plain = regexp.MustCompile(`^[A-Za-z0-9_./:@%+,=-]+$`)

// quote picks the first form both compose-go (v2) and python-dotenv
// (docker-compose v1) read back as v:
//   - bare when plain;
//   - 'single quotes' when singleSafe: compose-go does not interpolate them
//     (v1 only expands ${...}, see CompatV1) and both read \' as a quote;
//     newlines are kept literally;
//   - bare when bareSafe: backslashes are read verbatim unquoted by both,
//     which double quotes cannot do for v1 (it misreads a trailing
//     backslash and keeps the \ of \$);
//   - "double quotes" otherwise, escaping \ " $ LF CR; compose-go turns \$
//     into a literal $ (it would interpolate a bare $).
func quote(v string) string {
	if v == "" {
		return ""
	}
	if plain.MatchString(v) {
		return v
	}
	if singleSafe(v) {
		return "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
	}
	if bareSafe(v) {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// bareSafe reports whether v survives unquoted: unquoted values are cut at
// a newline or " #", trimmed of surrounding whitespace (Unicode whitespace
// for v1), interpolated at $, and read as quoted when they start with a
// quote. Only printable runes are allowed so nothing exotic counts as space.
func bareSafe(v string) bool {
	if v == "" || strings.ContainsAny(v, "$#") || v[0] == '\'' || v[0] == '"' ||
		v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// singleSafe reports whether v can be single-quoted: compose-go keeps a
// backslash in single quotes except before a quote (\' is the quote; \\ is
// two backslashes), v1 reads \\ as one, and v1 turns CR into LF. So no CR,
// and every backslash must be followed by something other than \ or '.
func singleSafe(v string) bool {
	if strings.IndexByte(v, '\r') >= 0 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && (i+1 == len(v) || v[i+1] == '\\' || v[i+1] == '\'') {
			return false
		}
	}
	return true
}
