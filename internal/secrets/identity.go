package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// EnvKey names the environment variable that holds an age identity's
// content (for CI, where no key file exists).
const EnvKey = "SHIPIT_AGE_KEY"

// KeyPath is where `shipit secrets init` keeps the app's age identity:
// $XDG_CONFIG_HOME/shipit/keys/<app>.key, by default
// ~/.config/shipit/keys/<app>.key.
func KeyPath(app string) string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "~"
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "shipit", "keys", app+".key")
}

// labeled remembers where an identity came from, for error messages.
type labeled struct {
	age.Identity
	source string
}

// describe names an identity for "tried ..." in error messages, never
// showing secret material.
func describe(id age.Identity) string {
	src := ""
	if l, ok := id.(*labeled); ok {
		src, id = l.source, l.Identity
	}
	var what string
	switch i := id.(type) {
	case *age.X25519Identity:
		what = i.Recipient().String()
	case *agessh.Ed25519Identity:
		what = "ssh-ed25519 key"
	case *agessh.RSAIdentity:
		what = "ssh-rsa key"
	default:
		what = fmt.Sprintf("%T", id)
	}
	if src == "" {
		return what
	}
	return src + " (" + what + ")"
}

// Identities gathers every identity available to decrypt the app's
// secrets, in this order: SHIPIT_AGE_KEY (the key's content), the key file
// KeyPath(app), then identityFiles (age identity files or unencrypted
// OpenSSH ed25519/RSA private keys; "" entries are ignored). All of them
// are tried when decrypting.
// A source that is present but unusable is an error, so a broken CI
// variable is not hidden by a key file that happens to work.
func Identities(app string, identityFiles ...string) ([]age.Identity, error) {
	var ids []age.Identity
	add := func(source string, found []age.Identity) {
		for _, id := range found {
			ids = append(ids, &labeled{Identity: id, source: source})
		}
	}
	if v := os.Getenv(EnvKey); strings.TrimSpace(v) != "" {
		found, err := parseIdentities([]byte(v))
		if err != nil {
			return nil, &IdentityError{Source: EnvKey, Err: err,
				hint: EnvKey + " must hold the full content of an age key file (AGE-SECRET-KEY-1... line) or of an unencrypted OpenSSH private key"}
		}
		add(EnvKey, found)
	}
	kp := KeyPath(app)
	if fi, err := os.Stat(kp); err == nil {
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, &IdentityError{Source: kp, Err: fmt.Errorf("permissions %04o are too open", fi.Mode().Perm()),
				hint: "a private key must be readable by you only: chmod 600 " + kp}
		}
		found, err := readIdentityFile(kp)
		if err != nil {
			return nil, err
		}
		add(kp, found)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, &IdentityError{Source: kp, Err: err}
	}
	for _, f := range identityFiles {
		if f == "" {
			continue
		}
		found, err := readIdentityFile(f)
		if err != nil {
			return nil, err
		}
		add(f, found)
	}
	if len(ids) == 0 {
		return nil, &NoIdentityError{App: app, KeyPath: kp}
	}
	return ids, nil
}

func readIdentityFile(path string) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &IdentityError{Source: path, Err: err, hint: "check the path given to --identity"}
	}
	ids, err := parseIdentities(data)
	if err != nil {
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) {
			return nil, &IdentityError{Source: path, Err: errors.New("the SSH key is protected by a passphrase"),
				hint: "shipit cannot prompt for SSH key passphrases: use an age key (`shipit secrets init`) or an unencrypted copy of the key"}
		}
		return nil, &IdentityError{Source: path, Err: err}
	}
	return ids, nil
}

// parseIdentities reads an age identity file or a PEM/OpenSSH private key.
// Errors never include the input (it is secret).
func parseIdentities(data []byte) ([]age.Identity, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(data)
		if err != nil {
			var pe *ssh.PassphraseMissingError
			if errors.As(err, &pe) {
				return nil, err
			}
			return nil, fmt.Errorf("not a usable SSH private key: %v", err)
		}
		return []age.Identity{id}, nil
	}
	return age.ParseIdentities(bytes.NewReader(data))
}

// ParseRecipients parses [secrets] recipients: age X25519 public keys
// (age1...) and SSH public keys (ssh-ed25519, ssh-rsa) as in a .pub file or
// authorized_keys line (the trailing comment is allowed).
func ParseRecipients(list []string) ([]age.Recipient, error) {
	if len(list) == 0 {
		return nil, &NoRecipientsError{}
	}
	var out []age.Recipient
	for i, s := range list {
		s = strings.TrimSpace(s)
		var r age.Recipient
		var err error
		switch {
		case strings.HasPrefix(s, "age1pq1"):
			r, err = age.ParseHybridRecipient(s)
		case strings.HasPrefix(s, "age1"):
			r, err = age.ParseX25519Recipient(s)
		case strings.HasPrefix(s, "ssh-"):
			r, err = agessh.ParseRecipient(s)
		case strings.HasPrefix(s, "AGE-SECRET-KEY-"), strings.Contains(s, "PRIVATE KEY"):
			// Never echo a private key back.
			return nil, &RecipientError{Index: i, Recipient: "(redacted)", Err: errors.New("this is a private key, not a public key")}
		default:
			err = errors.New("unknown recipient type (want age1... or ssh-ed25519/ssh-rsa)")
		}
		if err != nil {
			return nil, &RecipientError{Index: i, Recipient: s, Err: err}
		}
		out = append(out, r)
	}
	return out, nil
}

// Recipient returns the public recipient string of an identity when it
// has one shipit can print (X25519 keys), "" otherwise.
func Recipient(id age.Identity) string {
	if l, ok := id.(*labeled); ok {
		id = l.Identity
	}
	if x, ok := id.(*age.X25519Identity); ok {
		return x.Recipient().String()
	}
	return ""
}

// GenerateKey creates a new X25519 identity at path (mode 0600, parent
// directory 0700) and returns its recipient. It refuses to replace an
// existing file unless force is set; the replacement is atomic.
func GenerateKey(path string, force bool) (string, error) {
	if _, err := os.Lstat(path); err == nil && !force {
		return "", &KeyExistsError{Path: path}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create key directory: %w", err)
	}
	// MkdirAll keeps an existing directory's mode; a key directory others
	// can list is tightened.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("restrict key directory: %w", err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", fmt.Errorf("generate age key: %w", err)
	}
	rec := id.Recipient().String()
	content := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), rec, id.String())
	if err := writeAtomic(path, []byte(content), 0o600, !force); err != nil {
		return "", fmt.Errorf("write key: %w", err)
	}
	return rec, nil
}

// KeyFileRecipient is the recipient of the X25519 key in an identity file.
func KeyFileRecipient(path string) (string, error) {
	ids, err := readIdentityFile(path)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if r := Recipient(id); r != "" {
			return r, nil
		}
	}
	return "", &IdentityError{Source: path, Err: errors.New("no age X25519 key in the file")}
}
