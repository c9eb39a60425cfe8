// Package envsync builds a host's environment from its three sources and
// writes it to shared/.env only when something changed.
//
// Precedence (later wins): [stages.<name>.env] in shipit.toml, then
// `shipit config set` values kept on the host (shared/config.env), then
// age-encrypted secrets. Each source is stored on its own, so changing one
// never loses a value set through another.
package envsync

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/dotenv"
	"github.com/shipit-dev/shipit/internal/hostlock"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// Source names, as `shipit config list` shows them.
const (
	FromStage   = "shipit.toml"
	FromConfig  = "config"
	FromSecrets = "secret"
)

// Files on the host, relative to the app path.
const (
	EnvFile     = "shared/.env"
	ConfigFile  = "shared/config.env"
	SourcesFile = "shared/.env.sources"
	Snapshot    = ".env.snapshot" // in each release directory
	SnapSources = ".env.sources"  // in each release directory
)

// Merged is one key of the effective environment.
type Merged struct {
	Key, Value, Source string
	Shadows            []string // sources this key also has and that lose
}

// Merge applies the precedence; the result is sorted by key.
func Merge(stage, config, secrets map[string]string) []Merged {
	byKey := map[string]*Merged{}
	for _, src := range []struct {
		name string
		m    map[string]string
	}{{FromStage, stage}, {FromConfig, config}, {FromSecrets, secrets}} {
		for k, v := range src.m {
			if old, ok := byKey[k]; ok {
				old.Shadows = append(old.Shadows, old.Source)
				old.Value, old.Source = v, src.name
				continue
			}
			byKey[k] = &Merged{Key: k, Value: v, Source: src.name}
		}
	}
	out := make([]Merged, 0, len(byKey))
	for _, m := range byKey {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Sources is what the developer machine knows.
type Sources struct {
	Stage       map[string]string
	Secrets     map[string]string
	SecretsHash string // SHA-256 of the .age file, "" without secrets
	SecretsErr  error  // why secrets could not be decrypted, if they exist
	ComposeV1   bool   // the host's compose cannot carry every value
}

// Result says what Sync did.
type Result struct {
	Written     bool
	SecretsHash string
	Keys        int
}

// Sync makes <appPath>/shared/.env the merge of the sources, writing it
// (0600, atomically) only when the sources changed or the file is missing.
func Sync(ctx context.Context, c remote.Conn, appPath string, src Sources) (Result, error) {
	res := Result{SecretsHash: src.SecretsHash}
	cfg, err := ReadConfig(ctx, c, appPath)
	if err != nil {
		return res, err
	}
	plain := plainHash(src.Stage, cfg)
	want := fmt.Sprintf("age:%s plain:%s\n", src.SecretsHash, plain)
	have, haveErr := remote.ReadFile(ctx, c, path.Join(appPath, SourcesFile))
	exists, err := c.Exists(ctx, path.Join(appPath, EnvFile))
	if err != nil {
		return res, err
	}
	if haveErr == nil && string(have) == want && exists {
		return res, nil
	}
	if src.SecretsErr != nil {
		return res, src.SecretsErr
	}
	merged := Merge(src.Stage, cfg, src.Secrets)
	entries := make([]dotenv.Entry, len(merged))
	for i, m := range merged {
		entries[i] = dotenv.Entry{Key: m.Key, Value: m.Value}
	}
	if src.ComposeV1 {
		if err := dotenv.CompatV1(entries); err != nil {
			return res, fmt.Errorf("host %s: %w", c.Name(), err)
		}
	}
	body, err := dotenv.Serialize(entries)
	if err != nil {
		return res, fmt.Errorf("host %s: %s: %w", c.Name(), EnvFile, err)
	}
	if err := mkdirShared(ctx, c, appPath); err != nil {
		return res, err
	}
	if err := c.WriteFile(ctx, path.Join(appPath, EnvFile), bytes.NewReader(body), int64(len(body)), 0o600); err != nil {
		return res, fmt.Errorf("host %s: write %s: %w", c.Name(), EnvFile, err)
	}
	if err := c.WriteFile(ctx, path.Join(appPath, SourcesFile), strings.NewReader(want), int64(len(want)), 0o600); err != nil {
		return res, fmt.Errorf("host %s: write %s: %w", c.Name(), SourcesFile, err)
	}
	res.Written, res.Keys = true, len(entries)
	return res, nil
}

// SnapshotCmd copies the shared env and its sources into a release (0600)
// so a rollback can restore the env the release was deployed with.
func SnapshotCmd(appPath, releasePath string) string {
	// umask: 0600 from the first byte; the sources file may be missing on a
	// host taken over from the original shipit.
	return fmt.Sprintf("(umask 077 && cp %s %s && { [ ! -e %s ] || cp %s %s; })",
		shell.Quote(path.Join(appPath, EnvFile)), shell.Quote(path.Join(releasePath, Snapshot)),
		shell.Quote(path.Join(appPath, SourcesFile)), shell.Quote(path.Join(appPath, SourcesFile)), shell.Quote(path.Join(releasePath, SnapSources)))
}

// UndoDir is where BackupCmd keeps the shared env of before a change, for
// the host's journal to put back if the change is undone (relative to the
// app path; see internal/hostlock).
const UndoDir = ".shipit/env.undo"

// BackupCmd copies shared/.env and its sources into UndoDir (0700), unless a
// backup of this change is already there.
func BackupCmd(appPath string) string {
	undo := path.Join(appPath, UndoDir)
	q := shell.Quote
	return fmt.Sprintf("[ -d %[1]s ] || { (umask 077 && mkdir -p %[1]s.tmp) && "+
		"{ [ ! -e %[2]s ] || cp -p %[2]s %[1]s.tmp/; } && { [ ! -e %[3]s ] || cp -p %[3]s %[1]s.tmp/; } && mv %[1]s.tmp %[1]s; }",
		q(undo), q(path.Join(appPath, EnvFile)), q(path.Join(appPath, SourcesFile)))
}

// RestoreCmd makes a release's snapshot the shared env (0600 from the
// first byte, atomically).
func RestoreCmd(appPath, releasePath string) string {
	env, src := path.Join(appPath, EnvFile), path.Join(appPath, SourcesFile)
	q := shell.Quote
	return fmt.Sprintf("if [ -e %[1]s ]; then (umask 077 && "+
		"cp %[1]s %[2]s.tmp && chmod 600 %[2]s.tmp && mv -f %[2]s.tmp %[2]s && "+
		"if [ -e %[4]s ]; then cp %[4]s %[3]s.tmp && chmod 600 %[3]s.tmp && mv -f %[3]s.tmp %[3]s; else rm -f %[3]s; fi); fi",
		q(path.Join(releasePath, Snapshot)), q(env), q(src), q(path.Join(releasePath, SnapSources)))
}

// ReadConfig returns the host's `shipit config` values.
func ReadConfig(ctx context.Context, c remote.Conn, appPath string) (map[string]string, error) {
	return ReadEnvFile(ctx, c, path.Join(appPath, ConfigFile))
}

// ReadEnvFile reads an env file on the host into a map (a missing file is
// empty).
func ReadEnvFile(ctx context.Context, c remote.Conn, p string) (map[string]string, error) {
	b, err := remote.ReadFile(ctx, c, p)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := dotenv.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("host %s: %s: %w", c.Name(), p, err)
	}
	m := map[string]string{}
	for _, e := range entries {
		m[e.Key] = e.Value
	}
	return m, nil
}

// ConfigLock is the host's lock around a change of its `shipit config`
// values, relative to the app path.
const ConfigLock = ".shipit/config.lock"

// ConfigLockWait bounds how long a `shipit config` change queues behind
// another one on the same host.
const ConfigLockWait = 60 * time.Second

// UpdateConfig changes the host's `shipit config` values under the host's
// config lock: two overlapping changes (two `shipit config set`s) each see
// the other's result, none is lost. change edits the values in place and
// reports whether to write them.
func UpdateConfig(ctx context.Context, c remote.Conn, appPath string, change func(map[string]string) (bool, error)) error {
	unlock, err := hostlock.FileLock(ctx, c, path.Join(appPath, ConfigLock), ConfigLockWait)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := ReadConfig(ctx, c, appPath)
	if err != nil {
		return err
	}
	write, err := change(cur)
	if err != nil || !write {
		return err
	}
	return WriteConfig(ctx, c, appPath, cur)
}

// WriteConfig stores the host's `shipit config` values (0600, atomic). It
// is written by the shell under umask 077, not over SFTP, whose temp file
// would be created with the server's default mode and only then chmodded:
// this one is 0600 from its creation.
func WriteConfig(ctx context.Context, c remote.Conn, appPath string, values map[string]string) error {
	keys := slices.Sorted(maps.Keys(values))
	entries := make([]dotenv.Entry, len(keys))
	for i, k := range keys {
		entries[i] = dotenv.Entry{Key: k, Value: values[k]}
	}
	body, err := dotenv.Serialize(entries)
	if err != nil {
		return fmt.Errorf("host %s: %s: %w", c.Name(), ConfigFile, err)
	}
	if err := mkdirShared(ctx, c, appPath); err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	file := path.Join(appPath, ConfigFile)
	// The temp file's name is one the backstop clears when a cut write
	// leaves it.
	tmp := path.Join(path.Dir(file), "."+path.Base(file)+".shipit-tmp-"+hex.EncodeToString(rnd[:]))
	cmd := "umask 077 && cat > " + shell.Quote(tmp) + " && mv -f " + shell.Quote(tmp) + " " + shell.Quote(file) +
		" || { rm -f " + shell.Quote(tmp) + "; exit 1; }"
	var errb bytes.Buffer
	code, err := c.Run(ctx, cmd, bytes.NewReader(body), io.Discard, &errb)
	if err == nil && code != 0 {
		err = remote.Failed(c.Name(), "write "+file, code, errb.String(), "")
	}
	if err != nil {
		return fmt.Errorf("host %s: writing %s: %w", c.Name(), file, err)
	}
	return nil
}

func plainHash(stage, cfg map[string]string) string {
	h := sha256.New()
	for _, part := range []map[string]string{stage, cfg} {
		keys := slices.Sorted(maps.Keys(part))
		for _, k := range keys {
			fmt.Fprintf(h, "%d:%s=%d:%s\n", len(k), k, len(part[k]), part[k])
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func mkdirShared(ctx context.Context, c remote.Conn, appPath string) error {
	// 0700 as deploy creates it: it holds the env files and secrets.
	shared := shell.Quote(path.Join(appPath, "shared"))
	if code, err := c.Run(ctx, "mkdir -p -m 700 "+shared+" && chmod 700 "+shared, nil, io.Discard, io.Discard); err != nil || code != 0 {
		return fmt.Errorf("host %s: cannot create %s/shared (exit %d): %v", c.Name(), appPath, code, err)
	}
	return nil
}
