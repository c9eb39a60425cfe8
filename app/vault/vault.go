// Package vault is the secrets commands: a stage's encrypted secrets
// (.shipit/secrets/<stage>.age) created, changed, listed, edited and
// re-encrypted on this machine, and the app's age key. It never loads
// shipit.lua, so a script error never locks anyone out of the secrets.
package vault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"filippo.io/age"

	"github.com/shipit-dev/shipit/app/session"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/secrets"
)

// Env is what the secrets commands take of the global flags.
type Env struct {
	Config   string // path to shipit.toml
	Identity string // --identity
	ctx      context.Context
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
}

// NewEnv is an Env reading stdin and writing to stdout and stderr.
func NewEnv(ctx context.Context, config, identity string, stdin io.Reader, stdout, stderr io.Writer) *Env {
	return &Env{Config: config, Identity: identity, ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
}

// secretsProject is what the secrets commands need: config and store. It
// does not load shipit.lua, so a script error never locks you out.
type secretsProject struct {
	cfg   *config.Config
	store *secrets.Store
}

func (g *Env) secretsProject() (*secretsProject, error) {
	cfg, err := config.Load(session.RelName(g.Config))
	if err != nil {
		return nil, err
	}
	// Relative to the working directory when below it, for readable messages.
	dir := session.RelName(filepath.Join(filepath.Dir(g.Config), secrets.DefaultDir))
	return &secretsProject{cfg: cfg, store: &secrets.Store{Dir: dir, Recipients: cfg.Secrets.Recipients, App: cfg.App.Name}}, nil
}

func (p *secretsProject) identities(g *Env) ([]age.Identity, error) {
	return secrets.Identities(p.cfg.App.Name, g.Identity)
}

// stage checks the stage exists (a typo must not create a new file) and
// returns its file's display name.
// secretsToChange opens the project and the stage's secrets file for a
// command that rewrites it (the recipients must be valid).
func (g *Env) secretsToChange(stage string) (*secretsProject, string, error) {
	p, err := g.secretsProject()
	if err != nil {
		return nil, "", err
	}
	file, err := p.stage(stage)
	if err != nil {
		return nil, "", err
	}
	if err := p.checkRecipients(); err != nil {
		return nil, "", err
	}
	return p, file, nil
}

func (p *secretsProject) stage(name string) (string, error) {
	if _, err := p.cfg.Stage(name); err != nil {
		return "", err
	}
	return p.store.Path(name), nil
}

// load decrypts a stage's secrets; a stage without a file needs no identity.
// Values too short to be redacted are loaded (the secrets commands are how
// the user fixes them); saving new ones is refused (checkShort).
func (p *secretsProject) load(g *Env, stage string) (map[string]string, []string, error) {
	if !p.store.Exists(stage) {
		return map[string]string{}, nil, nil
	}
	ids, err := p.identities(g)
	if err != nil {
		return nil, nil, err
	}
	return p.store.LoadUnchecked(stage, ids)
}

// checkShort refuses values too short to be hidden in shipit's output
// (*secrets.ShortValueError naming the keys, with the stage in its hint).
func checkShort(stage string, values map[string]string) *secrets.ShortValueError {
	var short *secrets.ShortValueError
	if errors.As(secrets.CheckValues(values), &short) {
		short.Stage = stage
		return short
	}
	return nil
}

// checkRecipients fails early, before anything is decrypted, when saving
// would fail.
func (p *secretsProject) checkRecipients() error {
	_, err := secrets.ParseRecipients(p.cfg.Secrets.Recipients)
	return err
}

// InitOptions are the flags of `shipit secrets init`: creates the app's age identity.
type InitOptions struct {
	Force bool
	Write bool
}

// Init is `shipit secrets init`.
func Init(g *Env, c InitOptions) error {
	p, err := g.secretsProject()
	if err != nil {
		return err
	}
	path := secrets.KeyPath(p.cfg.App.Name)
	oldRec := ""
	if c.Force {
		oldRec, _ = secrets.KeyFileRecipient(path) // "" when there is no old key
	}
	rec, err := secrets.GenerateKey(path, c.Force)
	var exists *secrets.KeyExistsError
	switch {
	case errors.As(err, &exists) && c.Write:
		// Adding an existing key's recipient overwrites nothing.
		if rec, err = secrets.KeyFileRecipient(path); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "using the existing key %s\n", path)
	case err != nil:
		return err
	default:
		fmt.Fprintf(g.stderr, "created %s (mode 0600): back it up; without it you cannot decrypt secrets encrypted only to it\n", path)
		if oldRec != "" && slices.Contains(p.cfg.Secrets.Recipients, oldRec) {
			fmt.Fprintf(g.stderr, "the replaced key's recipient %s is still in [secrets] recipients: remove it, then run `shipit secrets rekey` with a key that can still decrypt\n", oldRec)
		}
	}
	fmt.Fprintln(g.stdout, rec)
	if !c.Write {
		fmt.Fprintf(g.stderr, "add it to [secrets] recipients in %s (or run again with --write)\n", session.RelName(g.Config))
		return nil
	}
	return addRecipient(g, p, rec)
}

// addRecipient edits shipit.toml in place and verifies the result parses
// and lists the recipient before replacing the file.
func addRecipient(g *Env, p *secretsProject, rec string) error {
	name := session.RelName(g.Config)
	data, err := os.ReadFile(g.Config)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	out, changed, err := secrets.AddRecipientTOML(data, rec)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !changed {
		fmt.Fprintf(g.stderr, "%s already lists this recipient\n", name)
		return nil
	}
	// The edit must add exactly our recipient and lose nothing.
	cfg, err := config.Parse(out, name)
	if err != nil || !slices.Equal(cfg.Secrets.Recipients, append(slices.Clone(p.cfg.Secrets.Recipients), rec)) {
		return &tomlEditError{file: name, err: err}
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(g.Config); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := secrets.WriteFileAtomic(g.Config, out, mode); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	fmt.Fprintf(g.stderr, "added the recipient to [secrets] recipients in %s\n", name)
	if st, _ := p.store.Stages(); len(st) > 0 {
		fmt.Fprintln(g.stderr, "existing secrets are not encrypted to it yet: someone who can decrypt them runs `shipit secrets rekey`")
	}
	return nil
}

type tomlEditError struct {
	file string
	err  error
}

func (e *tomlEditError) Error() string {
	msg := fmt.Sprintf("could not add the recipient to %s automatically (the file was left unchanged)", e.file)
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *tomlEditError) Hint() string {
	return "add the printed recipient by hand: [secrets] recipients = [\"age1...\"]"
}

// SetOptions are the flags of `shipit secrets set`: sets secrets.
type SetOptions struct {
	Stage string
	Pairs []string
}

// Set is `shipit secrets set`.
func Set(g *Env, c SetOptions) error {
	p, file, err := g.secretsToChange(c.Stage)
	if err != nil {
		return err
	}
	updates := map[string]string{}
	var keys []string
	fromStdin := ""
	for _, a := range c.Pairs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			if fromStdin != "" {
				return hint.New("only one KEY can read its value from stdin", "pass the others as KEY=VALUE")
			}
			fromStdin = k
		}
		if err := secrets.ValidKey(k); err != nil {
			return err
		}
		if _, dup := updates[k]; dup {
			return hint.New(fmt.Sprintf("%s is given twice", k), "set each key once")
		}
		updates[k] = v
		keys = append(keys, k)
	}
	if fromStdin != "" {
		data, err := io.ReadAll(g.stdin)
		if err != nil {
			return fmt.Errorf("read the value of %s from stdin: %w", fromStdin, err)
		}
		updates[fromStdin] = strings.TrimSuffix(string(data), "\n")
	}
	if short := checkShort(c.Stage, updates); short != nil {
		return short
	}
	values, order, err := p.load(g, c.Stage)
	if err != nil {
		return err
	}
	changed := false
	for _, k := range keys {
		old, had := values[k]
		if !had {
			order = append(order, k)
		}
		if !had || old != updates[k] {
			changed = true
		}
		values[k] = updates[k]
	}
	if !changed && p.store.Exists(c.Stage) {
		// Re-encrypting would change the file (and make the next deploy
		// rewrite the env) for nothing.
		fmt.Fprintf(g.stderr, "%s: unchanged (%s already set to these values)\n", file, strings.Join(keys, ", "))
		return nil
	}
	if err := p.store.Save(c.Stage, values, order); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "%s: set %s (%s)\n", file, strings.Join(keys, ", "), plural(len(values), "key"))
	return nil
}

// UnsetOptions are the flags of `shipit secrets unset`: removes secrets.
type UnsetOptions struct {
	Stage string
	Keys  []string
}

// Unset is `shipit secrets unset`.
func Unset(g *Env, c UnsetOptions) error {
	p, file, err := g.secretsToChange(c.Stage)
	if err != nil {
		return err
	}
	for _, k := range c.Keys {
		if err := secrets.ValidKey(k); err != nil {
			return err
		}
	}
	values, order, err := p.load(g, c.Stage)
	if err != nil {
		return err
	}
	// All or nothing: a typo must not half-apply.
	var missing []string
	for _, k := range c.Keys {
		if _, ok := values[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		have := "none"
		if len(order) > 0 {
			have = strings.Join(order, ", ")
		}
		return hint.New(
			fmt.Sprintf("%s: not set: %s (nothing was changed)", file, strings.Join(missing, ", ")),
			"stage "+c.Stage+" has: "+have,
		)
	}
	for _, k := range c.Keys {
		delete(values, k)
	}
	if err := p.store.Save(c.Stage, values, order); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "%s: unset %s (%s left)\n", file, strings.Join(c.Keys, ", "), plural(len(values), "key"))
	return nil
}

// ListOptions are the flags of `shipit secrets list`: lists secrets.
type ListOptions struct {
	Stage  string
	Reveal bool
}

// List is `shipit secrets list`.
func List(g *Env, c ListOptions) error {
	p, err := g.secretsProject()
	if err != nil {
		return err
	}
	file, err := p.stage(c.Stage)
	if err != nil {
		return err
	}
	if !p.store.Exists(c.Stage) {
		fmt.Fprintf(g.stderr, "stage %s has no secrets (%s does not exist); add some with `shipit secrets set -s %s KEY=VALUE`\n", c.Stage, file, c.Stage)
		return nil
	}
	values, order, err := p.load(g, c.Stage)
	if err != nil {
		return err
	}
	if c.Reveal {
		text, err := secrets.Text(values, order)
		if err != nil {
			return err
		}
		_, err = g.stdout.Write(text)
		return err
	}
	for _, k := range order {
		fmt.Fprintf(g.stdout, "%s=***\n", k)
	}
	if short := checkShort(c.Stage, values); short != nil {
		fmt.Fprintf(g.stderr, "shipit: warning: %v: commands that use these secrets refuse to run; %s\n", short, short.Hint())
	}
	return nil
}

// EditOptions are the flags of `shipit secrets edit`: edits secrets in $EDITOR.
type EditOptions struct {
	Stage string
}

const editHeader = `# shipit secrets of stage %s: KEY=VALUE lines, as in a Docker Compose env_file.
# Quote values with spaces, '#', quotes or newlines. Lines starting with '#'
# are ignored and not kept. Save and quit to encrypt; quit without saving
# to change nothing. This file is deleted when the editor exits.
`

// Edit is `shipit secrets edit`.
func Edit(g *Env, c EditOptions) error {
	p, file, err := g.secretsToChange(c.Stage)
	if err != nil {
		return err
	}
	values, order, err := p.load(g, c.Stage)
	if err != nil {
		return err
	}
	text, err := secrets.Text(values, order)
	if err != nil {
		return err
	}
	// The only plaintext shipit ever writes: 0600 in a private 0700
	// directory, removed on every path out.
	dir, err := os.MkdirTemp("", "shipit-secrets-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict temporary directory: %w", err)
	}
	tmp := filepath.Join(dir, c.Stage+".env")
	orig := append([]byte(fmt.Sprintf(editHeader, c.Stage)), text...)
	if err := os.WriteFile(tmp, orig, 0o600); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	in := bufio.NewReader(g.stdin)
	var lastShort *secrets.ShortValueError
	for {
		if err := runEditor(tmp); err != nil {
			return fmt.Errorf("%w (%s unchanged)", err, file)
		}
		edited, err := os.ReadFile(tmp)
		if err != nil {
			return fmt.Errorf("read temporary file: %w", err)
		}
		if bytes.Equal(edited, orig) {
			fmt.Fprintf(g.stderr, "%s: no changes\n", file)
			return nil
		}
		newValues, newOrder, perr := secrets.ParseText(edited)
		lastShort = nil
		if perr == nil {
			if maps(values, newValues) {
				fmt.Fprintf(g.stderr, "%s: no changes to the values\n", file)
				return nil
			}
			lastShort = checkShort(c.Stage, newValues)
		}
		if perr == nil && lastShort == nil {
			if err := p.store.Save(c.Stage, newValues, newOrder); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "%s: saved (%s)\n", file, plural(len(newValues), "key"))
			return nil
		}
		if lastShort != nil {
			fmt.Fprintf(g.stderr, "%s: %v\n", tmp, lastShort)
		} else {
			fmt.Fprintf(g.stderr, "%s\n", editErrorText(tmp, perr))
		}
		fmt.Fprint(g.stderr, "edit again? [Y/n] ")
		// Ctrl-C (caught by main) or a closed stdin aborts too.
		var answer string
		var ok bool
		select {
		case answer, ok = <-readLine(in):
		case <-g.ctx.Done():
		}
		answer = strings.ToLower(strings.TrimSpace(answer))
		if !ok || answer == "n" || answer == "no" {
			fmt.Fprintln(g.stderr)
			if lastShort != nil {
				return hint.New(fmt.Sprintf("edit aborted (%v): %s unchanged", lastShort, file), lastShort.Hint())
			}
			return hint.New(fmt.Sprintf("edit aborted: %s unchanged", file), "run `shipit secrets edit -s "+c.Stage+"` again")
		}
	}
}

// readLine reads one line in the background, so Ctrl-C (caught by main)
// can end the wait; the channel is closed at EOF. Only one read runs at a
// time, and never while the editor owns the terminal.
func readLine(in *bufio.Reader) <-chan string {
	ch := make(chan string, 1)
	go func() {
		l, err := in.ReadString('\n')
		if err != nil && l == "" {
			close(ch)
			return
		}
		ch <- l
	}()
	return ch
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// editErrorText is "FILE:LINE: message" when the parser gives a line.
func editErrorText(file string, err error) string {
	line, msg := secrets.LineProblem(err)
	if line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, line, msg)
	}
	return fmt.Sprintf("%s: %s", file, msg)
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// runEditor runs $EDITOR (default vi) on file through sh, so EDITOR may
// carry arguments ("code --wait").
func runEditor(file string) error {
	editor := os.Getenv("EDITOR")
	if strings.TrimSpace(editor) == "" {
		editor = "vi"
	}
	cmd := exec.Command("/bin/sh", "-c", editor+` "$1"`, "sh", file)
	cmd.Env = secrets.ScrubEnv(os.Environ()) // the editor sees the plaintext, never the key
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("editor %q failed: %w", editor, err)
	}
	return nil
}

// RekeyOptions are the flags of `shipit secrets rekey`: re-encrypts every stage's file to the current recipients.
type RekeyOptions struct{}

// Rekey is `shipit secrets rekey`.
func Rekey(g *Env, c RekeyOptions) error {
	p, err := g.secretsProject()
	if err != nil {
		return err
	}
	if err := p.checkRecipients(); err != nil {
		return err
	}
	stages, err := p.store.Stages()
	if err != nil {
		return err
	}
	if len(stages) == 0 {
		fmt.Fprintf(g.stderr, "no secrets in %s: nothing to rekey\n", p.store.Dir)
		return nil
	}
	ids, err := p.identities(g)
	if err != nil {
		return err
	}
	// Decrypt everything first: one unreadable file leaves all untouched.
	type loaded struct {
		values map[string]string
		order  []string
	}
	all := map[string]loaded{}
	for _, st := range stages {
		v, o, err := p.store.LoadUnchecked(st, ids)
		if err != nil {
			return err
		}
		all[st] = loaded{v, o}
	}
	warnSelfRemoval(g, p, ids)
	sort.Strings(stages)
	for _, st := range stages {
		if err := p.store.Save(st, all[st].values, all[st].order); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "%s: re-encrypted to %s\n", p.store.Path(st), plural(len(p.cfg.Secrets.Recipients), "recipient"))
	}
	return nil
}

// warnSelfRemoval says so when none of the user's age keys is a recipient
// any more (legitimate when leaving a team, a surprise otherwise). SSH
// identities cannot be compared cheaply, so their presence skips the check.
func warnSelfRemoval(g *Env, p *secretsProject, ids []age.Identity) {
	for _, id := range ids {
		r := secrets.Recipient(id)
		if r == "" || slices.Contains(p.cfg.Secrets.Recipients, r) {
			return
		}
	}
	fmt.Fprintln(g.stderr, "warning: none of your keys is in [secrets] recipients: after this rekey you can no longer decrypt these secrets")
}
