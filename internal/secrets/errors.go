package secrets

import (
	"fmt"
	"strings"
)

// NoIdentityError: nothing to decrypt with (no SHIPIT_AGE_KEY, no key file,
// no --identity).
type NoIdentityError struct {
	App     string
	KeyPath string
}

func (e *NoIdentityError) Error() string {
	return fmt.Sprintf("no age identity to decrypt secrets with (SHIPIT_AGE_KEY is not set, %s does not exist, no --identity given)", e.KeyPath)
}

func (e *NoIdentityError) Hint() string {
	return "run `shipit secrets init --write` to create a key for " + e.App +
		" (then ask a teammate to run `shipit secrets rekey`), pass --identity FILE (an age key file or SSH private key)," +
		" or set SHIPIT_AGE_KEY to the key's content (CI)"
}

// WrongIdentityError: the file is a valid age file but none of the
// identities is one of its recipients.
type WrongIdentityError struct {
	File    string
	Tried   []string // where the identities came from
	Stanzas []string // recipient types in the file header, e.g. X25519, ssh-ed25519
}

func (e *WrongIdentityError) Error() string {
	return fmt.Sprintf("cannot decrypt %s: it is not encrypted to any of your identities (tried %s; the file has %s recipients)",
		e.File, strings.Join(e.Tried, ", "), strings.Join(e.Stanzas, ", "))
}

func (e *WrongIdentityError) Hint() string {
	return "ask someone who can decrypt it to add your recipient (`shipit secrets init` prints it) to [secrets] recipients in shipit.toml and run `shipit secrets rekey`; or pass the right key with --identity FILE"
}

// CorruptError: the file is not a valid age file, fails authentication, or
// its plaintext is not a valid env file.
type CorruptError struct {
	File string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is corrupt: %v", e.File, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

func (e *CorruptError) Hint() string {
	return "restore it from version control (git checkout -- " + e.File + ") or delete it and set the secrets again; it must be a binary or armored age file whose plaintext is KEY=VALUE lines"
}

// NoRecipientsError: nothing to encrypt to.
type NoRecipientsError struct{}

func (e *NoRecipientsError) Error() string {
	return "no recipients to encrypt secrets to: [secrets] recipients in shipit.toml is empty"
}

func (e *NoRecipientsError) Hint() string {
	return "run `shipit secrets init --write` to create a key and add its recipient, or add public keys by hand: [secrets] recipients = [\"age1...\", \"ssh-ed25519 AAAA...\"]"
}

// RecipientError: one entry of [secrets] recipients does not parse.
type RecipientError struct {
	Index     int
	Recipient string
	Err       error
}

func (e *RecipientError) Error() string {
	return fmt.Sprintf("invalid secrets recipient #%d %q: %v", e.Index+1, e.Recipient, e.Err)
}

func (e *RecipientError) Unwrap() error { return e.Err }

func (e *RecipientError) Hint() string {
	return "[secrets] recipients takes age public keys (age1...) and SSH public keys (\"ssh-ed25519 AAAA...\" or \"ssh-rsa AAAA...\", as in ~/.ssh/id_ed25519.pub) — never a private key"
}

// IdentityError: an identity source exists but is unusable.
type IdentityError struct {
	Source string // "SHIPIT_AGE_KEY" or a file path
	Err    error
	hint   string
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("cannot use age identity from %s: %v", e.Source, e.Err)
}

func (e *IdentityError) Unwrap() error { return e.Err }

func (e *IdentityError) Hint() string {
	if e.hint != "" {
		return e.hint
	}
	return "an identity is an age key file (AGE-SECRET-KEY-1... lines, as written by `shipit secrets init` or age-keygen) or an unencrypted OpenSSH ed25519/RSA private key"
}

// KeyExistsError: secrets init would overwrite a key.
type KeyExistsError struct{ Path string }

func (e *KeyExistsError) Error() string { return e.Path + " already exists" }

func (e *KeyExistsError) Hint() string {
	return "keep it (its recipient is printed by `age-keygen -y " + e.Path + "`), or pass --force to replace it: files encrypted only to the old key can then no longer be decrypted by you"
}
