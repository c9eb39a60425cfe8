// Package secrets keeps a stage's secret environment in the repository as
// .shipit/secrets/<stage>.age: a standard age file, encrypted to every
// [secrets] recipient, whose plaintext is an env file (KEY=VALUE lines, as
// Docker Compose's env_file reads them). Plaintext lives only in memory;
// the only exception is the temporary file of `shipit secrets edit`.
package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/shipit-dev/shipit/internal/dotenv"
)

// DefaultDir is the store's directory relative to the project.
const DefaultDir = ".shipit/secrets"

// Store is the secrets of one project.
type Store struct {
	Dir        string   // <project>/.shipit/secrets
	Recipients []string // [secrets] recipients
	App        string   // app name, for the key path in hints
}

// Path is the stage's encrypted file.
func (s *Store) Path(stage string) string { return filepath.Join(s.Dir, stage+".age") }

// Exists reports whether the stage has a secrets file.
func (s *Store) Exists(stage string) bool {
	_, err := os.Stat(s.Path(stage))
	return err == nil
}

// Stages lists the stages that have a secrets file, sorted.
func (s *Store) Stages() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets directory: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".age") && !strings.HasPrefix(n, ".") {
			out = append(out, strings.TrimSuffix(n, ".age"))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Hash is the hex SHA-256 of the stage's .age file, "" when there is none.
// It changes exactly when the file's bytes change (deploy compares it with
// shipit.lock's secrets_hash).
func (s *Store) Hash(stage string) (string, error) {
	data, err := os.ReadFile(s.Path(stage))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read secrets: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Load decrypts the stage's secrets. A missing file is an empty set, not
// an error. Errors are *WrongIdentityError, *CorruptError, I/O errors, or
// *ShortValueError when a value is too short to be redacted (commands
// that use secrets refuse those).
func (s *Store) Load(stage string, ids []age.Identity) (map[string]string, []string, error) {
	values, order, err := s.LoadUnchecked(stage, ids)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckValues(values); err != nil {
		short := err.(*ShortValueError)
		short.File, short.Stage = s.Path(stage), stage
		return nil, nil, short
	}
	return values, order, nil
}

// LoadUnchecked is Load accepting values too short to be redacted: for the
// secrets commands, which must let the user see and fix them.
func (s *Store) LoadUnchecked(stage string, ids []age.Identity) (map[string]string, []string, error) {
	path := s.Path(stage)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read secrets: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil, &NoIdentityError{App: s.App, KeyPath: KeyPath(s.App)}
	}
	plain, err := Decrypt(path, data, ids)
	if err != nil {
		return nil, nil, err
	}
	values, order, err := ParseText(plain)
	if err != nil {
		line, msg := LineProblem(err)
		return nil, nil, &CorruptError{File: path, Err: fmt.Errorf("decrypted content, line %d: %s", line, msg)}
	}
	return values, order, nil
}

// Decrypt decrypts an age file's bytes (binary or ASCII-armored); name is
// used in errors.
func Decrypt(name string, data []byte, ids []age.Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, errors.New("decrypt " + name + ": no identities given")
	}
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte(armor.Header)) {
		src = armor.NewReader(bytes.NewReader(bytes.TrimSpace(data)))
	}
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			tried := make([]string, len(ids))
			for i, id := range ids {
				tried[i] = describe(id)
			}
			return nil, &WrongIdentityError{File: name, Tried: tried, Stanzas: nm.StanzaTypes}
		}
		return nil, &CorruptError{File: name, Err: err}
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, &CorruptError{File: name, Err: err}
	}
	return plain, nil
}

// ValidKey reports whether k can be an environment variable name.
func ValidKey(k string) error {
	if !dotenv.ValidKey(k) {
		return &KeyError{Key: k}
	}
	return nil
}

// KeyError is an invalid variable name.
type KeyError struct{ Key string }

func (e *KeyError) Error() string { return fmt.Sprintf("invalid variable name %q", e.Key) }

func (e *KeyError) Hint() string {
	return "environment variable names are letters, digits and '_', not starting with a digit"
}

// Save encrypts values to every recipient and replaces the stage's file
// atomically. Keys come out in order, then any remaining keys sorted.
func (s *Store) Save(stage string, values map[string]string, order []string) error {
	recs, err := ParseRecipients(s.Recipients)
	if err != nil {
		return err
	}
	plain, err := Text(values, order)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recs...)
	if err != nil {
		return fmt.Errorf("encrypt secrets: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("encrypt secrets: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypt secrets: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	if err := writeAtomic(s.Path(stage), buf.Bytes(), 0o644, false); err != nil {
		return fmt.Errorf("write secrets: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces path with data (mode applied) via a temporary
// file in the same directory and a rename.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode, false)
}

// Text is the env-file text of values in order (remaining keys sorted),
// as stored inside the .age file.
func Text(values map[string]string, order []string) ([]byte, error) {
	entries, err := ordered(values, order)
	if err != nil {
		return nil, err
	}
	return encodeEnv(entries)
}

// ParseText parses env-file text (as written by Text or by hand) into
// values and key order. Errors carry the line number.
func ParseText(data []byte) (map[string]string, []string, error) {
	entries, err := decodeEnv(data)
	if err != nil {
		return nil, nil, err
	}
	values := make(map[string]string, len(entries))
	var order []string
	for _, e := range entries {
		if _, dup := values[e.Key]; !dup {
			order = append(order, e.Key)
		}
		values[e.Key] = e.Value // last one wins, as in Compose
	}
	return values, order, nil
}

// LineProblem splits a parse error of secret text into a line number (0
// if unknown) and a message. dotenv's messages never quote the input,
// which may be a secret value, so they are safe to print.
func LineProblem(err error) (int, string) {
	var de *dotenv.Error
	if !errors.As(err, &de) {
		return 0, "not a valid env file"
	}
	return de.Line, de.Msg
}

// writeAtomic writes data to a temporary file next to path and moves it
// into place, so a crash never leaves a half-written file. With exclusive
// it fails if path exists.
func writeAtomic(path string, data []byte, mode os.FileMode, exclusive bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if exclusive {
		if err := os.Link(name, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return &KeyExistsError{Path: path}
			}
			return err
		}
		return nil
	}
	return os.Rename(name, path)
}

// ordered lists values in order, then the remaining keys sorted; every
// key must be a valid variable name.
func ordered(values map[string]string, order []string) ([]envEntry, error) {
	var entries []envEntry
	seen := map[string]bool{}
	addKey := func(k string) error {
		v, ok := values[k]
		if !ok || seen[k] {
			return nil
		}
		if err := ValidKey(k); err != nil {
			return err
		}
		seen[k] = true
		entries = append(entries, envEntry{Key: k, Value: v})
		return nil
	}
	for _, k := range order {
		if err := addKey(k); err != nil {
			return nil, err
		}
	}
	rest := make([]string, 0, len(values))
	for k := range values {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		if err := addKey(k); err != nil {
			return nil, err
		}
	}
	return entries, nil
}
