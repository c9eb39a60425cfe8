package dotenv

import (
	"fmt"
	"regexp"
	"strings"
)

// V1Error reports a value docker-compose v1 (1.29, python-dotenv) would
// change when reading Serialize's output as env_file.
type V1Error struct {
	Key    string
	Reason string
}

func (e *V1Error) Error() string {
	return fmt.Sprintf("env %q cannot be passed through docker-compose v1: %s", e.Key, e.Reason)
}

// Hint tells the user how to get the value through.
func (e *V1Error) Hint() string {
	return "install the Docker Compose v2 plugin (`docker compose`) on the host, or change the value"
}

// v1Var is python-dotenv's interpolation pattern: it expands ${NAME} and
// ${NAME:-default} in every value, quoted or not, with no escape.
var v1Var = regexp.MustCompile(`\$\{[^}:]*(?::-[^}]*)?\}`)

// CompatV1 returns a *V1Error for the first entry whose value
// docker-compose v1 would not deliver unchanged from Serialize's output:
// values containing ${...} (always interpolated by v1), and values that
// need double quotes and contain $ (v1 keeps the \ of \$) or end with a
// backslash (v1 reads \\" as an escaped quote).
func CompatV1(entries []Entry) error {
	for _, e := range entries {
		// Reasons never quote the value: it may be a secret.
		if v1Var.MatchString(e.Value) {
			return &V1Error{Key: e.Key, Reason: "it contains ${...}, which v1 always expands as a variable"}
		}
		if !strings.HasPrefix(quote(e.Value), `"`) {
			continue
		}
		if strings.Contains(e.Value, "$") {
			return &V1Error{Key: e.Key, Reason: "it contains $ and needs double quotes (for a carriage return, or a backslash before another backslash, a quote or the end), and v1 keeps the backslash of \\$"}
		}
		if strings.HasSuffix(e.Value, `\`) {
			return &V1Error{Key: e.Key, Reason: "it ends with a backslash and needs quoting, which v1 cannot read back exactly"}
		}
	}
	return nil
}
