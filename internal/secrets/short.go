package secrets

import (
	"fmt"
	"sort"
	"strings"
)

// MinValueLen is the length of the shortest non-empty secret value
// (leading and trailing whitespace not counted). shipit hides every secret
// value in what it prints; a shorter one cannot be hidden without mangling
// ordinary output, so it is refused. Empty values are fine. app/session's
// redactor uses the same bound.
const MinValueLen = 3

// TooShort reports whether v is a non-empty value that cannot be redacted.
func TooShort(v string) bool {
	n := len(strings.TrimSpace(v))
	return n > 0 && n < MinValueLen
}

// CheckValues returns a *ShortValueError naming every key whose value is
// too short to be redacted, nil when there is none.
func CheckValues(values map[string]string) error {
	var keys []string
	for k, v := range values {
		if TooShort(v) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	return &ShortValueError{Keys: keys}
}

// ShortValueError: secret values too short to be redacted.
type ShortValueError struct {
	Keys  []string
	File  string // the stage's .age file, when the values were loaded from it
	Stage string
}

func (e *ShortValueError) Error() string {
	what := "the value of secret " + strings.Join(e.Keys, ", ") + " is"
	if len(e.Keys) > 1 {
		what = "the values of secrets " + strings.Join(e.Keys, ", ") + " are"
	}
	msg := fmt.Sprintf("%s shorter than %d characters, too short to be hidden in shipit's output", what, MinValueLen)
	if e.File != "" {
		msg = e.File + ": " + msg
	}
	return msg
}

func (e *ShortValueError) Hint() string {
	stage := "STAGE"
	if e.Stage != "" {
		stage = e.Stage
	}
	return fmt.Sprintf("use a value of at least %d characters (or an empty one) with `shipit secrets set -s %s %s=...`, "+
		"or remove it with `shipit secrets unset -s %s %s`", MinValueLen, stage, e.Keys[0], stage, strings.Join(e.Keys, " "))
}
