package secrets

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// AddRecipientTOML adds rec to [secrets] recipients in the text of a
// shipit.toml, editing only what it must so comments and layout stay:
// it appends to an existing recipients array, adds the key under an
// existing [secrets] table, or appends a [secrets] table. changed is false
// when rec is already listed. The caller re-parses the result to verify it.
func AddRecipientTOML(data []byte, rec string) (out []byte, changed bool, err error) {
	lines := splitLines(data)
	quoted := strconv.Quote(rec)
	hdr, end := findTable(lines, "secrets")
	if hdr < 0 {
		var b bytes.Buffer
		b.Write(data)
		if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			b.WriteByte('\n')
		}
		if len(bytes.TrimSpace(data)) > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("[secrets]\nrecipients = [" + quoted + "]\n")
		return b.Bytes(), true, nil
	}
	// Look for "recipients = [" inside the table.
	for i := hdr + 1; i < end; i++ {
		m := reRecipientsKey.FindStringIndex(lines[i])
		if m == nil {
			continue
		}
		// Offset of the '[' in the whole text.
		off := lineOffset(lines, i) + m[1] - 1
		arr, err := scanArray(data, off)
		if err != nil {
			return nil, false, err
		}
		for _, v := range arr.values {
			if strings.TrimSpace(v) == rec {
				return data, false, nil
			}
		}
		var b bytes.Buffer
		switch {
		case arr.lastEnd < 0: // empty array
			b.Write(data[:off+1])
			b.WriteString(quoted)
			b.Write(data[off+1:])
		case arr.multiline && arr.closeAtLineStart:
			// One element per line: add ours as a new line before "]",
			// indented like the last element.
			ind := indentOf(data, arr.lastStart, off)
			b.Write(data[:arr.lastEnd])
			if !arr.trailingComma {
				b.WriteByte(',')
			}
			b.Write(data[arr.lastEnd:arr.closeLine])
			b.WriteString(ind + quoted + ",\n")
			b.Write(data[arr.closeLine:])
		default:
			b.Write(data[:arr.lastEnd])
			b.WriteString(", " + quoted)
			b.Write(data[arr.lastEnd:])
		}
		return b.Bytes(), true, nil
	}
	// [secrets] without recipients: add the key right after the header.
	at := lineOffset(lines, hdr+1)
	var b bytes.Buffer
	b.Write(data[:at])
	if at > 0 && data[at-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString("recipients = [" + quoted + "]\n")
	b.Write(data[at:])
	return b.Bytes(), true, nil
}

var (
	// Keys match case-insensitively, as shipit.toml is decoded.
	reRecipientsKey = regexp.MustCompile(`(?i)^\s*(recipients|"recipients"|'recipients')\s*=\s*\[`)
	reHeader        = regexp.MustCompile(`^\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(#.*)?$`)
)

// splitLines splits keeping the newlines, so offsets add up.
func splitLines(data []byte) []string {
	var out []string
	s := string(data)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

func lineOffset(lines []string, n int) int {
	off := 0
	for i := 0; i < n && i < len(lines); i++ {
		off += len(lines[i])
	}
	return off
}

// findTable returns the header line of [name] and the line where the
// next table starts (len(lines) if none); hdr is -1 when absent. Header
// lookalikes inside multi-line strings are not a concern in shipit.toml.
func findTable(lines []string, name string) (hdr, end int) {
	hdr, end = -1, len(lines)
	for i, l := range lines {
		m := reHeader.FindStringSubmatch(strings.TrimRight(l, "\r\n"))
		if m == nil {
			continue
		}
		if hdr >= 0 {
			return hdr, i
		}
		if strings.TrimSpace(l)[1] != '[' && strings.EqualFold(strings.Trim(m[1], `"'`), name) {
			hdr = i
		}
	}
	return hdr, end
}

type arrayScan struct {
	values           []string // string elements, unquoted
	lastStart        int      // offset of the last element (-1: none)
	lastEnd          int      // offset just past the last element (-1: none)
	trailingComma    bool     // a comma follows the last element
	multiline        bool     // '[' and ']' are on different lines
	closeAtLineStart bool     // only blanks precede ']' on its line
	closeLine        int      // offset of the start of the line holding ']'
}

var errArray = errors.New("cannot parse the [secrets] recipients array; add the recipient by hand")

// scanArray reads the TOML array of strings whose '[' is at data[open],
// skipping comments and honoring quotes.
func scanArray(data []byte, open int) (arrayScan, error) {
	a := arrayScan{lastStart: -1, lastEnd: -1}
	i := open + 1
	for i < len(data) {
		c := data[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == ',':
			if a.lastEnd < 0 {
				return a, errArray
			}
			a.trailingComma = true
			i++
		case c == '"' || c == '\'':
			if a.lastEnd >= 0 && !a.trailingComma {
				return a, errArray // two values without a comma
			}
			start := i
			j := i + 1
			for j < len(data) && data[j] != c && data[j] != '\n' {
				if c == '"' && data[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(data) || data[j] != c {
				return a, errArray
			}
			raw := string(data[start : j+1])
			v := raw[1 : len(raw)-1]
			if c == '"' {
				u, err := strconv.Unquote(raw)
				if err != nil {
					return a, errArray
				}
				v = u
			}
			a.values = append(a.values, v)
			a.lastStart, a.lastEnd, a.trailingComma = start, j+1, false
			i = j + 1
		case c == ']':
			a.multiline = bytes.IndexByte(data[open:i], '\n') >= 0
			ls := bytes.LastIndexByte(data[:i], '\n') + 1
			a.closeLine = ls
			a.closeAtLineStart = len(bytes.TrimSpace(data[ls:i])) == 0 && a.lastEnd < ls
			return a, nil
		default:
			return a, errArray
		}
	}
	return a, errArray
}

// indentOf is the leading whitespace of the line holding data[at], or two
// spaces when that line is the one that opens the array.
func indentOf(data []byte, at, open int) string {
	ls := bytes.LastIndexByte(data[:at], '\n') + 1
	if ls <= open {
		return "  "
	}
	line := data[ls:at]
	return string(line[:len(line)-len(bytes.TrimLeft(line, " \t"))])
}
