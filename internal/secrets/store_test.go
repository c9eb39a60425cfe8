package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
)

// hard are values that must survive the round trip byte for byte.
var hard = map[string]string{
	"EQ":        "a=b==c",
	"QUOTES":    `it's "quoted" 'both'`,
	"HASH":      "pass#word # not a comment",
	"DOLLAR":    "$HOME ${USER} $$ \\$",
	"SPACES":    "  leading and trailing  ",
	"UNICODE":   "héllo wörld ✓ 日本",
	"MULTILINE": "-----BEGIN KEY-----\nabc\n\ndef\n-----END KEY-----\n",
	"BACKSLASH": `C:\path\ends\`,
	"EMPTY":     "",
}
var hardOrder = []string{"EQ", "QUOTES", "HASH", "DOLLAR", "SPACES", "UNICODE", "MULTILINE", "BACKSLASH", "EMPTY"}

// isolate gives the test its own HOME/XDG_CONFIG_HOME and no SHIPIT_AGE_KEY,
// so no real key of the machine is ever used.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv(EnvKey, "")
	return home
}

func newKey(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, id.Recipient().String()
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func mustTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for this test (scripts/testenv.sh installs it): %v", name, err)
	}
	return p
}

// sshKey generates an unencrypted SSH key pair with ssh-keygen and returns
// the private key path and the public key line.
func sshKey(t *testing.T, typ string, passphrase string) (string, string) {
	t.Helper()
	mustTool(t, "ssh-keygen")
	path := filepath.Join(t.TempDir(), "id_"+typ)
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "tester@example", "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(pub))
}

func TestRoundTripHardValues(t *testing.T) {
	isolate(t)
	id, rec := newKey(t)
	s := &Store{Dir: filepath.Join(t.TempDir(), ".shipit", "secrets"), Recipients: []string{rec}, App: "demo"}
	if s.Exists("production") {
		t.Fatal("Exists before Save")
	}
	vals, order, err := s.Load("production", []age.Identity{id})
	if err != nil || len(vals) != 0 || len(order) != 0 {
		t.Fatalf("missing file must load as empty: %v %v %v", vals, order, err)
	}
	if err := s.Save("production", hard, hardOrder); err != nil {
		t.Fatal(err)
	}
	if !s.Exists("production") || s.Path("production") != filepath.Join(s.Dir, "production.age") {
		t.Fatalf("file not at %s", s.Path("production"))
	}
	got, gotOrder, err := s.Load("production", []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, hard) || !reflect.DeepEqual(gotOrder, hardOrder) {
		t.Fatalf("round trip:\n got %q %q\nwant %q %q", got, gotOrder, hard, hardOrder)
	}
	// Ciphertext only: no value appears in the file.
	raw, _ := os.ReadFile(s.Path("production"))
	for k, v := range hard {
		if len(v) > 3 && bytes.Contains(raw, []byte(v)) {
			t.Errorf("value of %s is in the file in clear", k)
		}
	}
	// Keys missing from order come after, sorted.
	if err := s.Save("staging", map[string]string{"B": "two", "A": "one", "C": "three"}, []string{"C"}); err != nil {
		t.Fatal(err)
	}
	if _, o, _ := s.Load("staging", []age.Identity{id}); !reflect.DeepEqual(o, []string{"C", "A", "B"}) {
		t.Fatalf("order %v", o)
	}
	st, err := s.Stages()
	if err != nil || !reflect.DeepEqual(st, []string{"production", "staging"}) {
		t.Fatalf("Stages = %v, %v", st, err)
	}
	// No temporary file left behind.
	ents, _ := os.ReadDir(s.Dir)
	if len(ents) != 2 {
		t.Fatalf("leftover files: %v", ents)
	}
}

func TestInvalidKeysAndValuesRefused(t *testing.T) {
	isolate(t)
	_, rec := newKey(t)
	s := &Store{Dir: t.TempDir(), Recipients: []string{rec}}
	var ke *KeyError
	if err := s.Save("p", map[string]string{"1BAD": "x"}, nil); !errors.As(err, &ke) || ke.Hint() == "" {
		t.Fatalf("want KeyError, got %v", err)
	}
	if err := s.Save("p", map[string]string{"NUL": "a\x00b"}, nil); err == nil || s.Exists("p") {
		t.Fatalf("NUL byte must be refused before writing: %v", err)
	}
}

func TestRecipientsX25519AndSSH(t *testing.T) {
	isolate(t)
	xid, xrec := newKey(t)
	edPriv, edPub := sshKey(t, "ed25519", "")
	rsaPriv, rsaPub := sshKey(t, "rsa", "")
	s := &Store{Dir: t.TempDir(), Recipients: []string{xrec, edPub, rsaPub}, App: "demo"}
	if err := s.Save("production", hard, hardOrder); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "x.key")
	writeFile(t, keyFile, xid.String()+"\n", 0o600)
	for name, file := range map[string]string{"x25519": keyFile, "ssh-ed25519": edPriv, "ssh-rsa": rsaPriv} {
		t.Run(name, func(t *testing.T) {
			ids, err := Identities("demo", file)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := s.Load("production", ids)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, hard) {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestParseRecipients(t *testing.T) {
	_, rec := newKey(t)
	_, edPub := sshKey(t, "ed25519", "")
	recs, err := ParseRecipients([]string{rec, "  " + edPub + "  "})
	if err != nil || len(recs) != 2 {
		t.Fatalf("%v %v", recs, err)
	}
	var ne *NoRecipientsError
	if _, err := ParseRecipients(nil); !errors.As(err, &ne) || !strings.Contains(ne.Hint(), "secrets init --write") {
		t.Fatalf("empty: %v", err)
	}
	var re *RecipientError
	if _, err := ParseRecipients([]string{rec, "age1nope"}); !errors.As(err, &re) || re.Index != 1 || !strings.Contains(err.Error(), "#2") || re.Hint() == "" {
		t.Fatalf("bad: %v", err)
	}
	if _, err := ParseRecipients([]string{"ecdsa-sha2-nistp256 AAAA"}); !errors.As(err, &re) {
		t.Fatalf("unsupported type: %v", err)
	}
	// A private key pasted as a recipient is refused and never echoed.
	id, _ := newKey(t)
	_, err = ParseRecipients([]string{id.String()})
	if !errors.As(err, &re) || strings.Contains(err.Error(), id.String()) || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("private key as recipient: %v", err)
	}
}

func TestErrorsHaveHints(t *testing.T) {
	isolate(t)
	id, rec := newKey(t)
	other, _ := newKey(t)
	dir := t.TempDir()
	s := &Store{Dir: dir, Recipients: []string{rec}, App: "demo"}
	if err := s.Save("production", map[string]string{"A": "one"}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("no identity", func(t *testing.T) {
		_, err := Identities("demo", "")
		var e *NoIdentityError
		if !errors.As(err, &e) || !strings.Contains(err.Error(), KeyPath("demo")) || !strings.Contains(e.Hint(), "SHIPIT_AGE_KEY") || !strings.Contains(e.Hint(), "--identity") {
			t.Fatalf("%v", err)
		}
		_, _, err = s.Load("production", nil)
		if !errors.As(err, &e) {
			t.Fatalf("Load without identities: %v", err)
		}
	})
	t.Run("wrong identity", func(t *testing.T) {
		_, _, err := s.Load("production", []age.Identity{other})
		var e *WrongIdentityError
		if !errors.As(err, &e) || !strings.Contains(err.Error(), other.Recipient().String()) || !strings.Contains(err.Error(), "X25519") || !strings.Contains(e.Hint(), "rekey") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		good, _ := os.ReadFile(s.Path("production"))
		flipped := bytes.Clone(good)
		flipped[len(flipped)-5] ^= 0xff // payload tampered
		for name, data := range map[string][]byte{
			"garbage":   []byte("this is not an age file\n"),
			"truncated": good[:len(good)-20],
			"tampered":  flipped,
		} {
			writeFile(t, s.Path("bad"), string(data), 0o644)
			_, _, err := s.Load("bad", []age.Identity{id})
			var e *CorruptError
			if !errors.As(err, &e) || !strings.Contains(e.Hint(), "git checkout") {
				t.Errorf("%s: %v", name, err)
			}
		}
		os.Remove(s.Path("bad"))
	})
	t.Run("corrupt plaintext", func(t *testing.T) {
		var buf bytes.Buffer
		w, _ := age.Encrypt(&buf, id.Recipient())
		w.Write([]byte("A=1\nsk_live_SECRETVALUE\n"))
		w.Close()
		writeFile(t, s.Path("plain"), buf.String(), 0o644)
		defer os.Remove(s.Path("plain"))
		_, _, err := s.Load("plain", []age.Identity{id})
		var e *CorruptError
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "line 2: expected KEY=VALUE") || strings.Contains(err.Error(), "SECRETVALUE") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("empty recipients", func(t *testing.T) {
		empty := &Store{Dir: dir, App: "demo"}
		err := empty.Save("production", map[string]string{"A": "two"}, nil)
		var e *NoRecipientsError
		if !errors.As(err, &e) || e.Hint() == "" {
			t.Fatalf("%v", err)
		}
		if v, _, _ := s.Load("production", []age.Identity{id}); v["A"] != "one" {
			t.Fatal("failed Save changed the file")
		}
	})
	t.Run("bad SHIPIT_AGE_KEY", func(t *testing.T) {
		t.Setenv(EnvKey, "AGE-SECRET-KEY-1NOTAKEY")
		_, err := Identities("demo", "")
		var e *IdentityError
		if !errors.As(err, &e) || e.Source != EnvKey || strings.Contains(err.Error(), "NOTAKEY") || !strings.Contains(e.Hint(), EnvKey) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("key file too open", func(t *testing.T) {
		kp := KeyPath("demo")
		os.MkdirAll(filepath.Dir(kp), 0o700)
		writeFile(t, kp, id.String()+"\n", 0o644)
		defer os.Remove(kp)
		_, err := Identities("demo", "")
		var e *IdentityError
		if !errors.As(err, &e) || !strings.Contains(e.Hint(), "chmod 600 "+kp) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("passphrase ssh key", func(t *testing.T) {
		priv, _ := sshKey(t, "ed25519", "sekrit-pass")
		_, err := Identities("demo", priv)
		var e *IdentityError
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "passphrase") || !strings.Contains(e.Hint(), "unencrypted") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("missing identity file", func(t *testing.T) {
		_, err := Identities("demo", filepath.Join(dir, "nope.key"))
		var e *IdentityError
		if !errors.As(err, &e) || !strings.Contains(e.Hint(), "--identity") {
			t.Fatalf("%v", err)
		}
	})
}

func TestHashChangesIffFileChanges(t *testing.T) {
	isolate(t)
	id, rec := newKey(t)
	s := &Store{Dir: t.TempDir(), Recipients: []string{rec}}
	if h, err := s.Hash("production"); h != "" || err != nil {
		t.Fatalf("no file: %q %v", h, err)
	}
	if err := s.Save("production", map[string]string{"A": "one"}, nil); err != nil {
		t.Fatal(err)
	}
	h1, _ := s.Hash("production")
	raw, _ := os.ReadFile(s.Path("production"))
	sum := sha256.Sum256(raw)
	if h1 != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s is not the SHA-256 of the file", h1)
	}
	// Reading (decrypting) does not change it.
	s.Load("production", []age.Identity{id})
	if h, _ := s.Hash("production"); h != h1 {
		t.Fatal("hash changed without a write")
	}
	// Any write changes it (age encryption is randomized), even of equal values.
	if err := s.Save("production", map[string]string{"A": "two"}, nil); err != nil {
		t.Fatal(err)
	}
	h2, _ := s.Hash("production")
	if h2 == h1 || h2 == "" {
		t.Fatalf("hash did not change: %s", h2)
	}
	// Other stages do not affect it.
	s.Save("staging", map[string]string{"B": "one"}, nil)
	if h, _ := s.Hash("production"); h != h2 {
		t.Fatal("another stage's write changed the hash")
	}
}

func TestEnvKeyWithoutKeyFile(t *testing.T) {
	home := isolate(t)
	id, rec := newKey(t)
	s := &Store{Dir: t.TempDir(), Recipients: []string{rec}, App: "demo"}
	if err := s.Save("production", hard, hardOrder); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(KeyPath("demo")); !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(KeyPath("demo"), home) {
		t.Fatalf("key file must not exist for this test: %v", err)
	}
	// As a CI secret: the whole key file, comments included.
	t.Setenv(EnvKey, "# created: now\n# public key: "+rec+"\n"+id.String()+"\n")
	ids, err := Identities("demo", "")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Load("production", ids)
	if err != nil || !reflect.DeepEqual(got, hard) {
		t.Fatalf("%q %v", got, err)
	}
	// An SSH private key works there too.
	edPriv, edPub := sshKey(t, "ed25519", "")
	s.Recipients = []string{edPub}
	s.Save("ssh", map[string]string{"A": "one"}, nil)
	pem, _ := os.ReadFile(edPriv)
	t.Setenv(EnvKey, string(pem))
	ids, err = Identities("demo", "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Load("ssh", ids); err != nil || v["A"] != "one" {
		t.Fatalf("%v %v", v, err)
	}
}

func TestGenerateKeyModesAndForce(t *testing.T) {
	home := isolate(t)
	kp := KeyPath("demo")
	if kp != filepath.Join(home, ".config", "shipit", "keys", "demo.key") {
		t.Fatalf("KeyPath = %s", kp)
	}
	rec, err := GenerateKey(kp, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(kp)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v %v", fi.Mode(), err)
	}
	di, _ := os.Stat(filepath.Dir(kp))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v", di.Mode())
	}
	if r, err := KeyFileRecipient(kp); err != nil || r != rec {
		t.Fatalf("recipient %q vs %q: %v", r, rec, err)
	}
	// The key file is found without flags.
	ids, err := Identities("demo", "")
	if err != nil || len(ids) != 1 || Recipient(ids[0]) != rec {
		t.Fatalf("%v %v", ids, err)
	}
	before, _ := os.ReadFile(kp)
	_, err = GenerateKey(kp, false)
	var ke *KeyExistsError
	if !errors.As(err, &ke) || !strings.Contains(ke.Hint(), "--force") {
		t.Fatalf("overwrite without force: %v", err)
	}
	if after, _ := os.ReadFile(kp); !bytes.Equal(before, after) {
		t.Fatal("refused overwrite changed the key")
	}
	rec2, err := GenerateKey(kp, true)
	if err != nil || rec2 == rec {
		t.Fatalf("force: %v", err)
	}
	if fi, _ := os.Stat(kp); fi.Mode().Perm() != 0o600 {
		t.Fatalf("forced key mode %v", fi.Mode())
	}
	// A too-open existing directory is tightened.
	os.Chmod(filepath.Dir(kp), 0o755)
	GenerateKey(KeyPath("other"), false)
	if di, _ := os.Stat(filepath.Dir(kp)); di.Mode().Perm() != 0o700 {
		t.Fatalf("dir not tightened: %v", di.Mode())
	}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "xdg"))
	if KeyPath("demo") != filepath.Join(home, "xdg", "shipit", "keys", "demo.key") {
		t.Fatalf("XDG: %s", KeyPath("demo"))
	}
}

// Interop with the Debian age CLI, both directions.
func TestAgeCLIInterop(t *testing.T) {
	isolate(t)
	mustTool(t, "age")
	dir := t.TempDir()
	id, rec := newKey(t)
	keyFile := filepath.Join(dir, "key.txt")
	writeFile(t, keyFile, id.String()+"\n", 0o600)
	edPriv, edPub := sshKey(t, "ed25519", "")
	s := &Store{Dir: filepath.Join(dir, ".shipit", "secrets"), Recipients: []string{rec, edPub}, App: "demo"}

	t.Run("shipit to age", func(t *testing.T) {
		if err := s.Save("production", hard, hardOrder); err != nil {
			t.Fatal(err)
		}
		want, _ := Text(hard, hardOrder)
		for _, k := range []string{keyFile, edPriv} {
			out, err := exec.Command("age", "-d", "-i", k, s.Path("production")).Output()
			if err != nil {
				t.Fatalf("age -d -i %s: %v", k, err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("age -d gave\n%q\nwant\n%q", out, want)
			}
			vals, order, err := ParseText(out)
			if err != nil || !reflect.DeepEqual(vals, hard) || !reflect.DeepEqual(order, hardOrder) {
				t.Fatalf("plaintext does not parse back: %v", err)
			}
		}
	})
	t.Run("age to shipit", func(t *testing.T) {
		plain := filepath.Join(dir, "plain.env")
		writeFile(t, plain, "# made by hand\nexport DB_URL=postgres://u:p@db/app?sslmode=disable\nMSG='hello # world'\nMULTI=\"a\\nb\"\n\n", 0o600)
		want := map[string]string{"DB_URL": "postgres://u:p@db/app?sslmode=disable", "MSG": "hello # world", "MULTI": "a\nb"}
		for name, args := range map[string][]string{
			"binary":    {"-r", rec, "-o", s.Path("x"), plain},
			"armored":   {"-a", "-r", rec, "-o", s.Path("x"), plain},
			"ssh-recip": {"-r", edPub, "-o", s.Path("x"), plain},
		} {
			if out, err := exec.Command("age", args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: age %v: %v\n%s", name, args, err, out)
			}
			ids := []age.Identity{id}
			if name == "ssh-recip" {
				var err error
				if ids, err = Identities("demo", edPriv); err != nil {
					t.Fatal(err)
				}
			}
			got, order, err := s.Load("x", ids)
			if err != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(order, []string{"DB_URL", "MSG", "MULTI"}) {
				t.Fatalf("%s: %q %v %v", name, got, order, err)
			}
		}
	})
}

// Values too short to be redacted: Load refuses them naming every such key
// (not their values); LoadUnchecked returns them; empty and whitespace-only
// values and values of 3 characters are fine.
func TestShortValues(t *testing.T) {
	isolate(t)
	id, rec := newKey(t)
	s := &Store{Dir: t.TempDir(), Recipients: []string{rec}, App: "demo"}
	vals := map[string]string{"A": "qz", "B": "", "C": " w ", "D": "abc", "E": "   ", "F": "é", "G": "\nxyz\n"}
	if err := s.Save("production", vals, nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Load("production", []age.Identity{id})
	var short *ShortValueError
	if !errors.As(err, &short) || got != nil {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if !reflect.DeepEqual(short.Keys, []string{"A", "C", "F"}) || short.Stage != "production" || short.File != s.Path("production") {
		t.Fatalf("%+v", short)
	}
	want := s.Path("production") + ": the values of secrets A, C, F are shorter than 3 characters, too short to be hidden in shipit's output"
	if err.Error() != want {
		t.Fatalf("error:\n got %s\nwant %s", err, want)
	}
	if h := short.Hint(); !strings.Contains(h, "`shipit secrets set -s production A=...`") || !strings.Contains(h, "`shipit secrets unset -s production A C F`") {
		t.Fatalf("hint: %s", h)
	}
	if strings.Contains(err.Error()+short.Hint(), "qz") {
		t.Fatal("a value is in the error")
	}
	if got, _, err := s.LoadUnchecked("production", []age.Identity{id}); err != nil || !reflect.DeepEqual(got, vals) {
		t.Fatalf("LoadUnchecked = %q, %v", got, err)
	}
	if err := CheckValues(map[string]string{"B": "", "D": "abc", "E": " \t "}); err != nil {
		t.Fatal(err)
	}
	if err := CheckValues(map[string]string{"X": "ab"}); err == nil || err.Error() != "the value of secret X is shorter than 3 characters, too short to be hidden in shipit's output" {
		t.Fatalf("%v", err)
	}
}
