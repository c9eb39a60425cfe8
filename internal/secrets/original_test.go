package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// originalPlaintext is what the original shipit encrypts (serialize_dotenv
// in src/secrets/store.rs): KEY=VALUE lines sorted by key (a BTreeMap),
// joined with "\n", no trailing newline, no quoting or escaping.
func originalPlaintext(values map[string]string) []byte {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + values[k]
	}
	return []byte(strings.Join(lines, "\n"))
}

// originalValues are values `shipit secrets set` of the original could
// store and read back (it trims keys and values and splits on the first
// "="), written unquoted. Compose reads the same values from the .env the
// original deployed, so they are what the containers had.
var originalValues = map[string]string{
	"DATABASE_URL":    "postgres://app:p@ss@db:5432/app?sslmode=disable",
	"SECRET_KEY_BASE": "a1b2c3==d4e5=",
	"GREETING":        "hello world",
	"APOSTROPHE":      "it's",
	"EMPTY":           "",
	"HASH_IN_WORD":    "abc#def",
}

// Secrets files and keys the original shipit wrote keep working: an
// armored age file encrypted to every [secrets] recipient (its
// ArmoredWriter; the same format as `age -a` and filippo.io/age/armor),
// decrypted with the key file at ~/.config/shipit/keys/<app>.key in the
// original's form (one AGE-SECRET-KEY line, no newline, mode 0600), in
// age-keygen's form (with comment lines, which the original refuses), or
// with the key in SHIPIT_AGE_KEY.
func TestOriginalShipitSecretsFiles(t *testing.T) {
	home := isolate(t)
	mustTool(t, "age")
	mustTool(t, "age-keygen")
	project := t.TempDir()
	s := &Store{Dir: filepath.Join(project, ".shipit", "secrets"), App: "myapp"}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(home, ".config", "shipit", "keys", "myapp.key")
	if KeyPath("myapp") != keyPath {
		t.Fatalf("KeyPath = %s, want the original's %s", KeyPath("myapp"), keyPath)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o755); err != nil {
		t.Fatal(err)
	}

	// The app's key as the original writes it, and a teammate's key: the
	// file is encrypted to both recipients.
	id, rec := newKey(t)
	_, other := newKey(t)
	plain := originalPlaintext(originalValues)
	if bytes.HasSuffix(plain, []byte("\n")) || !bytes.HasPrefix(plain, []byte("APOSTROPHE=it's\nDATABASE_URL=")) {
		t.Fatalf("plaintext not in the original's form:\n%s", plain)
	}

	// age-keygen's key file for the same checks.
	keygenFile := filepath.Join(t.TempDir(), "keygen.key")
	if out, err := exec.Command("age-keygen", "-o", keygenFile).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	keygen, err := os.ReadFile(keygenFile)
	if err != nil {
		t.Fatal(err)
	}
	keygenRec := ""
	for _, l := range strings.Split(string(keygen), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			keygenRec = r
		}
	}
	if !bytes.HasPrefix(keygen, []byte("# created: ")) || keygenRec == "" {
		t.Fatalf("age-keygen wrote no comment lines:\n%s", keygen)
	}

	encryptGo := func(recipients ...string) []byte {
		var rs []age.Recipient
		for _, r := range recipients {
			x, err := age.ParseX25519Recipient(r)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, x)
		}
		var out bytes.Buffer
		aw := armor.NewWriter(&out)
		w, err := age.Encrypt(aw, rs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := aw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	encryptCLI := func(recipients ...string) []byte {
		args := []string{"-a"}
		for _, r := range recipients {
			args = append(args, "-r", r)
		}
		cmd := exec.Command("age", args...)
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("age %v: %v", args, err)
		}
		return out
	}

	for _, tc := range []struct {
		name    string
		key     string // content of ~/.config/shipit/keys/myapp.key ("" = none)
		env     string // SHIPIT_AGE_KEY
		encrypt func(...string) []byte
		to      []string
	}{
		{"original key file, armored by filippo.io/age", id.String(), "", encryptGo, []string{rec, other}},
		{"original key file, armored by the age CLI", id.String(), "", encryptCLI, []string{other, rec}},
		{"age-keygen key file with comments", string(keygen), "", encryptCLI, []string{keygenRec, other}},
		{"SHIPIT_AGE_KEY without a key file", "", id.String(), encryptGo, []string{rec}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(keyPath)
			if tc.key != "" {
				writeFile(t, keyPath, tc.key, 0o600)
			}
			t.Setenv(EnvKey, tc.env)
			data := tc.encrypt(tc.to...)
			if !bytes.HasPrefix(data, []byte(armor.Header+"\n")) || !bytes.Contains(data, []byte(armor.Footer)) {
				t.Fatalf("not an armored age file:\n%s", data)
			}
			writeFile(t, s.Path("production"), string(data), 0o644)

			ids, err := Identities("myapp")
			if err != nil {
				t.Fatalf("Identities: %v", err)
			}
			got, order, err := s.Load("production", ids)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, originalValues) {
				t.Fatalf("values = %q\nwant     %q", got, originalValues)
			}
			if !sort.StringsAreSorted(order) || len(order) != len(originalValues) {
				t.Fatalf("order = %v", order)
			}
			// shipit.lock's secrets_hash is the SHA-256 of the file's bytes,
			// as the original computes it: an unchanged file is not
			// rewritten on the hosts at the first deploy after migrating.
			sum := sha256.Sum256(data)
			if h, err := s.Hash("production"); err != nil || h != hex.EncodeToString(sum[:]) {
				t.Fatalf("Hash = %q, %v", h, err)
			}
		})
	}
}
