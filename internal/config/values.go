package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"github.com/shipit-dev/shipit/internal/hint"
)

// Duration is a duration key of shipit.toml. It is written either as an
// integer number of seconds (`interval = 2`, as the original shipit wrote
// every duration) or as a Go duration string (`interval = "2s"`,
// "500ms", "1m30s"). Negative durations are refused.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String is Go's duration string: "2s", "1m30s", "0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as its duration string, which UnmarshalTOML reads
// back (JSON and TOML encoders use it).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Seconds returns d in seconds.
func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

// UnmarshalTOML decodes an integer (seconds) or a duration string. Parse
// reports the same errors with file:line:col before decoding (see
// checkValues); this method is what the decoder calls.
func (d *Duration) UnmarshalTOML(raw []byte) error {
	kind, data, err := rawScalar(raw)
	if err != nil {
		return err
	}
	v, verr := durationOf(kind, data)
	if verr != nil {
		return verr
	}
	*d = v
	return nil
}

// Batch is [deploy.rollout] batch: how many hosts of a stage deploy at
// once, written as an integer (hosts) or a percentage string ("25%").
// The zero Batch means every host at once.
type Batch struct {
	count   int // hosts per batch (> 0), or
	percent int // percent of the stage's hosts (1-100)
}

// BatchOf is a batch of n hosts (n >= 1).
func BatchOf(n int) Batch { return Batch{count: n} }

// BatchPercent is a batch of p percent of the hosts (1 <= p <= 100).
func BatchPercent(p int) Batch { return Batch{percent: p} }

// Count returns the number of hosts when the batch was written as an
// integer.
func (b Batch) Count() (int, bool) { return b.count, b.count > 0 }

// Percent returns the percentage when the batch was written as "N%" (the
// zero Batch is 100%).
func (b Batch) Percent() (int, bool) {
	if b.count > 0 {
		return 0, false
	}
	if b.percent == 0 {
		return 100, true
	}
	return b.percent, true
}

// Size is the number of hosts per batch for a stage of hosts hosts: the
// count, or the percentage of hosts rounded down, never more than hosts
// and never less than 1.
func (b Batch) Size(hosts int) int {
	n := hosts
	if c, ok := b.Count(); ok {
		n = c
	} else if p, _ := b.Percent(); p < 100 {
		n = hosts * p / 100
	}
	return max(1, min(n, hosts))
}

// String is the batch as written in shipit.toml: "3" or "25%".
func (b Batch) String() string {
	if c, ok := b.Count(); ok {
		return strconv.Itoa(c)
	}
	p, _ := b.Percent()
	return strconv.Itoa(p) + "%"
}

// UnmarshalTOML decodes an integer or a "N%" string.
func (b *Batch) UnmarshalTOML(raw []byte) error {
	kind, data, err := rawScalar(raw)
	if err != nil {
		return err
	}
	v, verr := batchOf(kind, data)
	if verr != nil {
		return verr
	}
	*b = v
	return nil
}

// valueError is a value of the right TOML type family but not a valid one
// (or of a wrong type) for a Duration or Batch key. Parse turns it into an
// *Error at the value's position.
type valueError struct {
	typeGot string // set for a wrong TOML type: "boolean", "float"...
	msg     string // otherwise: what is wrong, e.g. "must not be negative"
	hint    string
}

func (e *valueError) Error() string {
	if e.typeGot != "" {
		return "got " + article(e.typeGot)
	}
	return e.msg
}

const (
	durationWant = `a duration: an integer number of seconds (2) or a duration string ("2s", "500ms", "1m30s")`
	batchWant    = `a batch size: an integer number of hosts (2) or a percentage of the stage's hosts ("25%")`
)

// durationOf decodes a Duration from a TOML value of kind with data (the
// digits of an integer, the content of a string).
func durationOf(kind unstable.Kind, data string) (Duration, *valueError) {
	switch kind {
	case unstable.Integer:
		n, err := tomlInt(data)
		switch {
		case err != nil:
			return 0, &valueError{msg: fmt.Sprintf("%s is not a valid number of seconds", data), hint: "expected " + durationWant}
		case n < 0:
			return 0, &valueError{msg: fmt.Sprintf("must not be negative, got %d", n), hint: "expected " + durationWant}
		case n > math.MaxInt64/int64(time.Second):
			return 0, &valueError{msg: fmt.Sprintf("%d seconds is too long", n), hint: "expected " + durationWant}
		}
		return Duration(time.Duration(n) * time.Second), nil
	case unstable.String:
		d, err := time.ParseDuration(data)
		if err != nil {
			hint := `use a duration such as "2s", "500ms" or "1m30s", or an integer number of seconds without quotes`
			if _, ierr := strconv.Atoi(strings.TrimSpace(data)); ierr == nil {
				hint = fmt.Sprintf(`a duration string needs a unit ("%ss"); or write the number of seconds without quotes`, strings.TrimSpace(data))
			}
			return 0, &valueError{msg: fmt.Sprintf("invalid duration %q", data), hint: hint}
		}
		if d < 0 {
			return 0, &valueError{msg: fmt.Sprintf("must not be negative, got %q", data), hint: "expected " + durationWant}
		}
		return Duration(d), nil
	}
	return 0, &valueError{typeGot: kindName(kind), hint: "expected " + durationWant}
}

// batchOf decodes a Batch like durationOf.
func batchOf(kind unstable.Kind, data string) (Batch, *valueError) {
	switch kind {
	case unstable.Integer:
		n, err := tomlInt(data)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return Batch{}, &valueError{msg: fmt.Sprintf("must be at least 1 host, got %s", data),
				hint: "expected " + batchWant + `; leave batch out to deploy every host at once`}
		}
		return BatchOf(int(n)), nil
	case unstable.String:
		num, ok := strings.CutSuffix(data, "%")
		p, err := strconv.Atoi(num)
		if !ok || err != nil || strings.ContainsAny(num, "+- ") {
			hint := "expected " + batchWant
			if _, ierr := strconv.Atoi(data); ierr == nil {
				hint = "write a number of hosts without quotes (batch = " + data + `), or a percentage ("` + data + `%")`
			}
			return Batch{}, &valueError{msg: fmt.Sprintf("invalid batch %q", data), hint: hint}
		}
		if p < 1 || p > 100 {
			return Batch{}, &valueError{msg: fmt.Sprintf("the percentage must be between 1%% and 100%%, got %q", data),
				hint: "expected " + batchWant}
		}
		return BatchPercent(p), nil
	}
	return Batch{}, &valueError{typeGot: kindName(kind), hint: "expected " + batchWant}
}

// tomlInt parses the digits of a TOML integer (sign, underscores, 0x/0o/0b).
func tomlInt(s string) (int64, error) {
	return strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "string"
	case unstable.Integer:
		return "integer"
	case unstable.Float:
		return "float"
	case unstable.Bool:
		return "boolean"
	case unstable.Array:
		return "array"
	case unstable.InlineTable:
		return "inline table"
	case unstable.Table, unstable.ArrayTable:
		return "table"
	case unstable.DateTime, unstable.LocalDateTime:
		return "datetime"
	case unstable.LocalDate:
		return "date"
	case unstable.LocalTime:
		return "time"
	}
	return "value"
}

// rawScalar parses one raw TOML value (as the decoder hands it to
// UnmarshalTOML) into its kind and data. Anything but a single value (the
// decoder hands a table's key/value lines) is a table. Errors are
// *valueError: a parser error of this private buffer must not reach the
// decoder, which would place it in the document.
func rawScalar(raw []byte) (unstable.Kind, string, error) {
	var p unstable.Parser
	p.Reset(append([]byte("v = "), raw...))
	if !p.NextExpression() || p.Error() != nil {
		return unstable.Invalid, "", &valueError{typeGot: "table"}
	}
	v := p.Expression().Value()
	if v == nil {
		return unstable.Invalid, "", &valueError{typeGot: "table"}
	}
	kind, data := v.Kind, string(v.Data)
	if p.NextExpression() || p.Error() != nil {
		return unstable.Invalid, "", &valueError{typeGot: "table"}
	}
	return kind, data, nil
}

// ParseBatch reads a batch from the command line: "2" or "25%".
func ParseBatch(s string) (Batch, error) {
	kind := unstable.String
	if !strings.HasSuffix(s, "%") {
		kind = unstable.Integer
	}
	b, err := batchOf(kind, s)
	if err != nil {
		return Batch{}, hint.New("--batch "+s+": "+err.msg, err.hint)
	}
	return b, nil
}

// Command is [deploy.health_check] cmd: a shell command string (run with
// the image's /bin/sh -c), or a list of words run as they are, without a
// shell, for images that bring their own probe and have no shell.
type Command struct {
	Shell string   // cmd = "curl -f localhost:3000/up"
	Exec  []string // cmd = ["/app", "-healthcheck"]
}

// IsZero reports whether no command was given (the HTTP probe is used).
func (c Command) IsZero() bool { return c.Shell == "" && len(c.Exec) == 0 }

// String is the command as a user reads it.
func (c Command) String() string {
	if len(c.Exec) > 0 {
		return "[" + strings.Join(quoteAll(c.Exec), ", ") + "]"
	}
	return c.Shell
}

func quoteAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = strconv.Quote(w)
	}
	return out
}

// MarshalText is String (for the Lua and JSON views of the config).
func (c Command) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalTOML decodes a string or a non-empty array of strings.
func (c *Command) UnmarshalTOML(raw []byte) error {
	var doc struct {
		V any `toml:"v"`
	}
	if err := toml.Unmarshal(append([]byte("v = "), raw...), &doc); err != nil {
		return &valueError{typeGot: "table"}
	}
	v, verr := commandOf(doc.V)
	if verr != nil {
		return verr
	}
	*c = v
	return nil
}

func commandOf(v any) (Command, *valueError) {
	const hint = `write a shell command (cmd = "curl -f http://127.0.0.1:3000/up") or, for an image without a shell, ` +
		`a list of words (cmd = ["/app", "-healthcheck"])`
	switch x := v.(type) {
	case string:
		return Command{Shell: x}, nil
	case []any:
		if len(x) == 0 {
			return Command{}, &valueError{msg: "must not be an empty list", hint: hint}
		}
		words := make([]string, len(x))
		for i, w := range x {
			s, ok := w.(string)
			if !ok || s == "" {
				return Command{}, &valueError{msg: "must be a list of non-empty strings", hint: hint}
			}
			words[i] = s
		}
		return Command{Exec: words}, nil
	case map[string]any:
		return Command{}, &valueError{typeGot: "table", hint: hint}
	case bool:
		return Command{}, &valueError{typeGot: "boolean", hint: hint}
	case int64:
		return Command{}, &valueError{typeGot: "integer", hint: hint}
	case float64:
		return Command{}, &valueError{typeGot: "float", hint: hint}
	}
	return Command{}, &valueError{typeGot: "value", hint: hint}
}
