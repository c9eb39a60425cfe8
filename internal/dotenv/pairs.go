package dotenv

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/shipit-dev/shipit/internal/hint"
)

// BadPair is a malformed KEY=VALUE argument.
func BadPair(arg, why string) error {
	return hint.New(fmt.Sprintf("%q: %s", arg, why),
		"write KEY=VALUE with KEY made of letters, digits and _ (not starting with a digit); quote the whole pair for your shell")
}

// ParsePairs reads KEY=VALUE arguments (the value may contain '='): the
// values, and the keys in the order first given.
func ParsePairs(args []string) (map[string]string, []string, error) {
	vals := map[string]string{}
	var order []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, nil, BadPair(a, "missing '='")
		}
		if !ValidKey(k) {
			return nil, nil, BadPair(a, fmt.Sprintf("invalid key %q", k))
		}
		if !utf8.ValidString(v) {
			return nil, nil, hint.New(fmt.Sprintf("the value of %s is not valid UTF-8", k),
				"env values are text: encode binary data (base64) before setting it")
		}
		if _, dup := vals[k]; !dup {
			order = append(order, k)
		}
		vals[k] = v
	}
	return vals, order, nil
}
