package session

import (
	"testing"

	"github.com/shipit-dev/shipit/internal/secrets"
)

// Every value secrets accepts is one the redactor hides, and the shortest
// accepted value is hidden.
func TestRedactorHidesEveryAcceptedValue(t *testing.T) {
	for _, v := range []string{"abc", " abc ", "é€", "line one\nline two", "   xyz"} {
		if secrets.TooShort(v) {
			t.Fatalf("%q refused", v)
		}
		r := Redactor(map[string]string{"K": v})
		if r == nil || r("before "+v+" after") != "before *** after" {
			t.Fatalf("%q not redacted", v)
		}
	}
	for _, v := range []string{"a", "ab", " ab ", "é"} {
		if !secrets.TooShort(v) {
			t.Fatalf("%q accepted", v)
		}
	}
}
