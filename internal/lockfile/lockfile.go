// Package lockfile reads and writes shipit.lock, the JSON file in the app
// directory on each host that records the current and previous release.
package lockfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Lock is shipit.lock. The field order is the file's (contract).
type Lock struct {
	CurrentRelease  string `json:"current_release"`
	PreviousRelease string `json:"previous_release"`
	GitSHA          string `json:"git_sha"`
	SecretsHash     string `json:"secrets_hash"`
	DeployedAt      string `json:"deployed_at"` // RFC 3339, UTC
}

// ErrEmpty is returned (wrapped) by Parse for an empty or blank file.
var ErrEmpty = errors.New("shipit.lock is empty")

// Marshal returns the lock as two-space indented JSON in the spec's field
// order, ending with a newline.
func (l Lock) Marshal() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(l); err != nil { // only strings: cannot fail
		panic(err)
	}
	return buf.Bytes()
}

// Parse decodes shipit.lock. Empty input (a missing or truncated file) is
// ErrEmpty; input that is not a JSON object of strings is an error. Unknown
// fields are ignored so that newer versions can add some; absent fields
// are "".
func Parse(data []byte) (*Lock, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	if trimmed := bytes.TrimSpace(data); trimmed[0] != '{' {
		return nil, fmt.Errorf("shipit.lock is not a JSON object: %q", firstBytes(trimmed, 40))
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("shipit.lock is not valid JSON: %w", err)
	}
	return &l, nil
}

func firstBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
