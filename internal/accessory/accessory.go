// Package accessory turns [accessories.NAME] into the `docker run` that
// boots it, a label that records what was booted, and a readable diff
// between the two; builtins/accessory gives them to recipes.
package accessory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/shell"
)

// Network is the Docker network accessories join (the one Traefik and the
// app's releases share), so the app reaches an accessory at <app>-<name>.
const Network = "traefik"

// Label keys set on accessory containers and named volumes.
const (
	LabelApp       = "shipit.app"
	LabelAccessory = "shipit.accessory"
	LabelStage     = "shipit.stage"
	LabelHash      = "shipit.config-hash"
	LabelConfig    = "shipit.config" // Summary as JSON: what boot compares against
)

// Volume is one mount of an accessory.
type Volume struct {
	Source string // volume name as written in shipit.toml (named), or absolute host path (bind)
	Target string
	Mode   string // "", "ro" or "rw"
	Named  bool
}

func (v Volume) String() string {
	s := v.Source + ":" + v.Target
	if v.Mode != "" {
		s += ":" + v.Mode
	}
	return s
}

// Summary is what boot records in the container's shipit.config label and
// compares against. Env values are kept only as salted hashes: they may be
// secrets, and labels are shown by every `docker inspect`.
type Summary struct {
	Image   string            `json:"image"`
	Ports   []string          `json:"ports"`
	Volumes []string          `json:"volumes"`
	Cmd     []string          `json:"cmd"`
	Env     map[string]string `json:"env"` // key -> hash of key and value
	Restart string            `json:"restart"`
	Network string            `json:"network"`
}

// Spec is one accessory, ready to run.
type Spec struct {
	Name      string
	App       string
	Stage     string
	Container string
	Image     string
	Ports     []string // docker -p values
	Volumes   []Volume
	Cmd       []string
	Env       map[string]string
	Summary   Summary
	Hash      string
}

var (
	reVolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]+$`) // Docker's rule for volume names
	reEnvKey  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Build validates [accessories.<name>] and resolves it for app and stage.
func Build(app, stage, name string, a config.Accessory) (*Spec, error) {
	key := "accessories." + name
	s := &Spec{Name: name, App: app, Stage: stage, Container: app + "-" + name, Image: a.Image, Env: a.Env}
	if strings.TrimSpace(a.Image) == "" {
		return nil, hint.New(fmt.Sprintf("accessory %q has no image", name), `add image = "postgres:16" (for example) under [`+key+"]")
	}
	if a.Port != "" {
		p, err := parsePort(a.Port)
		if err != nil {
			return nil, hint.New(fmt.Sprintf("%s.port = %q: %v", key, a.Port, err),
				`use "CONTAINER" or "HOST:CONTAINER" (published on 127.0.0.1), or "IP:HOST:CONTAINER" (e.g. "0.0.0.0:5432:5432" to publish on every interface); "/udp" may follow`)
		}
		s.Ports = []string{p}
	}
	seen := map[string]bool{}
	for _, raw := range a.Volumes {
		v, err := parseVolume(raw)
		if err != nil {
			return nil, hint.New(fmt.Sprintf("%s.volumes: %q: %v", key, raw, err),
				`use "NAME:/path/in/container" for the Docker volume NAME (created if missing) or "/absolute/host/path:/path/in/container" for a bind mount; ":ro" may follow`)
		}
		if seen[v.Target] {
			return nil, hint.New(fmt.Sprintf("%s.volumes: %s is mounted twice", key, v.Target), "give each container path one volume")
		}
		seen[v.Target] = true
		s.Volumes = append(s.Volumes, v)
	}
	if a.Cmd != "" {
		words, err := SplitWords(a.Cmd)
		if err != nil {
			return nil, hint.New(fmt.Sprintf("%s.cmd = %q: %v", key, a.Cmd, err),
				`cmd is split into words like a shell would, without running one: quote with '...' or "...", and wrap pipes, ; or $VARS in sh -c '...'`)
		}
		s.Cmd = words
	}
	keys := slices.Sorted(maps.Keys(a.Env))
	envHashes := map[string]string{}
	for _, k := range keys {
		v := a.Env[k]
		if !reEnvKey.MatchString(k) {
			return nil, hint.New(fmt.Sprintf("%s.env: invalid variable name %q", key, k), "use letters, digits and _, not starting with a digit")
		}
		if strings.ContainsAny(v, "\n\r\x00") || !utf8.ValidString(v) {
			return nil, hint.New(fmt.Sprintf("%s.env.%s: the value contains a newline, carriage return, NUL or invalid UTF-8", key, k),
				"Docker env files carry one line per variable: encode the value (e.g. base64) and decode it in the container")
		}
		envHashes[k] = envHash(app, name, k, v)
	}
	s.Summary = Summary{Image: s.Image, Ports: orEmpty(s.Ports), Cmd: orEmpty(s.Cmd), Env: envHashes,
		Restart: "always", Network: Network}
	for _, v := range s.Volumes {
		s.Summary.Volumes = append(s.Summary.Volumes, v.String())
	}
	s.Summary.Volumes = orEmpty(s.Summary.Volumes)
	b, _ := json.Marshal(s.Summary)
	sum := sha256.Sum256(b)
	s.Hash = hex.EncodeToString(sum[:])
	return s, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// envHash identifies a value without revealing it; the salt keeps equal
// values in different variables or apps from looking alike.
func envHash(app, name, k, v string) string {
	sum := sha256.Sum256([]byte("shipit-accessory-env\x00" + app + "\x00" + name + "\x00" + k + "\x00" + v))
	return hex.EncodeToString(sum[:8])
}

// parsePort normalises a port to a `docker run -p` value. A port without
// an interface is published on 127.0.0.1: a database must not face the
// internet by accident; the app reaches it over the traefik network anyway.
func parsePort(p string) (string, error) {
	body, proto := p, ""
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		body, proto = p[:i], p[i+1:]
		if proto != "tcp" && proto != "udp" {
			return "", fmt.Errorf("protocol must be tcp or udp")
		}
		proto = "/" + proto
	}
	var ip, host, ctr string
	parts := strings.Split(body, ":")
	switch len(parts) {
	case 1:
		ip, host, ctr = "127.0.0.1", parts[0], parts[0]
	case 2:
		ip, host, ctr = "127.0.0.1", parts[0], parts[1]
	default:
		i := strings.LastIndexByte(body, ':')
		j := strings.LastIndexByte(body[:i], ':')
		ip, host, ctr = body[:j], body[j+1:i], body[i+1:]
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if ip == "" || strings.ContainsAny(ip, " /") {
			return "", fmt.Errorf("invalid interface address %q", ip)
		}
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
	}
	for _, n := range []string{host, ctr} {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 || v > 65535 {
			return "", fmt.Errorf("%q is not a port number (1-65535)", n)
		}
	}
	return ip + ":" + host + ":" + ctr + proto, nil
}

// parseVolume resolves "name:/path[:ro]" to the Docker volume name (as
// written: the original shipit and `docker run -v` use that name, so data
// a migrated host already has is mounted), and "/host/path:/path[:ro]" to a
// bind mount.
func parseVolume(raw string) (Volume, error) {
	parts := strings.Split(raw, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Volume{}, fmt.Errorf("expected SOURCE:/container/path[:ro]")
	}
	v := Volume{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return Volume{}, fmt.Errorf("mode must be ro or rw, not %q", parts[2])
		}
		v.Mode = parts[2]
	}
	if !strings.HasPrefix(v.Target, "/") {
		return Volume{}, fmt.Errorf("the container path %q must be absolute", v.Target)
	}
	switch {
	case strings.HasPrefix(v.Source, "/"):
	case reVolName.MatchString(v.Source):
		v.Named = true
	default:
		return Volume{}, fmt.Errorf("%q is neither a volume name nor an absolute host path (a volume name is two or more letters, digits, '_', '.' or '-', starting with a letter or digit)", v.Source)
	}
	return v, nil
}

// Labels are the container's labels.
func (s *Spec) Labels() map[string]string {
	b, _ := json.Marshal(s.Summary)
	return map[string]string{LabelApp: s.App, LabelAccessory: s.Name, LabelStage: s.Stage,
		LabelHash: s.Hash, LabelConfig: string(b)}
}

// RunCommand is the `docker run` that creates and starts the container.
// The environment is read from stdin (EnvFile), so values never appear on
// a command line or on the host's disk.
func (s *Spec) RunCommand() string {
	args := []string{"docker", "run", "--detach", "--name", s.Container, "--restart", "always",
		"--network", Network, "--network-alias", s.Name}
	labels := s.Labels()
	for _, k := range sortedKeys(labels) {
		args = append(args, "--label", k+"="+labels[k])
	}
	for _, p := range s.Ports {
		args = append(args, "--publish", p)
	}
	for _, v := range s.Volumes {
		args = append(args, "--volume", v.String())
	}
	if len(s.Env) > 0 {
		args = append(args, "--env-file", "/dev/stdin")
	}
	args = append(args, s.Image)
	args = append(args, s.Cmd...)
	return shell.Join(args...)
}

// EnvFile is the Docker env file for the container (KEY=VALUE lines, no
// quoting: Docker takes the rest of the line literally).
func (s *Spec) EnvFile() string {
	var b strings.Builder
	for _, k := range sortedKeys(s.Env) {
		b.WriteString(k + "=" + s.Env[k] + "\n")
	}
	return b.String()
}

// VolumeCreateCommands create the named volumes that do not exist yet,
// labelled with the app and accessory: those labels mark the volumes
// shipit created, the only ones remove --volumes deletes. A volume that
// already exists (made by hand, by the original shipit's `docker run -v`,
// or shared with another accessory) is mounted as it is and never labelled.
func (s *Spec) VolumeCreateCommands() []string {
	var out []string
	for _, v := range s.Volumes {
		if v.Named {
			out = append(out, shell.Join("docker", "volume", "inspect", v.Source)+" >/dev/null 2>&1 || "+
				shell.Join("docker", "volume", "create", "--label", LabelApp+"="+s.App,
					"--label", LabelAccessory+"="+s.Name, v.Source)+" >/dev/null")
		}
	}
	return out
}

// NamedVolumes are the names of the accessory's named volumes, as written
// in shipit.toml.
func (s *Spec) NamedVolumes() []string {
	var out []string
	for _, v := range s.Volumes {
		if v.Named {
			out = append(out, v.Source)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := slices.Sorted(maps.Keys(m))
	return keys
}

// Diff says what changed between the summary recorded on a container
// (its shipit.config label) and the spec, without env values or the
// command line (either may hold secrets).
func Diff(recorded string, s *Spec) []string {
	var old Summary
	if err := json.Unmarshal([]byte(recorded), &old); err != nil || recorded == "" {
		return []string{"the container has no readable shipit.config label (booted by an older shipit?)"}
	}
	var out []string
	if old.Image != s.Summary.Image {
		out = append(out, fmt.Sprintf("image %s -> %s", old.Image, s.Summary.Image))
	}
	var added, removed, changed []string
	for k, h := range s.Summary.Env {
		switch oh, ok := old.Env[k]; {
		case !ok:
			added = append(added, k)
		case oh != h:
			changed = append(changed, k)
		}
	}
	for k := range old.Env {
		if _, ok := s.Summary.Env[k]; !ok {
			removed = append(removed, k)
		}
	}
	if len(added)+len(removed)+len(changed) > 0 {
		var parts []string
		for _, p := range []struct {
			what string
			keys []string
		}{{"changed", changed}, {"added", added}, {"removed", removed}} {
			if len(p.keys) > 0 {
				sort.Strings(p.keys)
				parts = append(parts, p.what+" "+strings.Join(p.keys, ", "))
			}
		}
		out = append(out, "env: "+strings.Join(parts, "; "))
	}
	if d := listDiff(old.Ports, s.Summary.Ports); d != "" {
		out = append(out, "ports: "+d)
	}
	if d := listDiff(old.Volumes, s.Summary.Volumes); d != "" {
		out = append(out, "volumes: "+d)
	}
	if strings.Join(old.Cmd, "\x00") != strings.Join(s.Summary.Cmd, "\x00") {
		out = append(out, "cmd changed")
	}
	if old.Restart != s.Summary.Restart || old.Network != s.Summary.Network {
		out = append(out, "run options changed (restart policy or network)")
	}
	if len(out) == 0 {
		out = append(out, "container settings changed")
	}
	return out
}

func listDiff(old, cur []string) string {
	in := func(l []string, x string) bool {
		for _, y := range l {
			if y == x {
				return true
			}
		}
		return false
	}
	var parts []string
	for _, x := range old {
		if !in(cur, x) {
			parts = append(parts, "-"+x)
		}
	}
	for _, x := range cur {
		if !in(old, x) {
			parts = append(parts, "+"+x)
		}
	}
	return strings.Join(parts, " ")
}

// SplitWords splits a command line into words the way sh would for plain
// words and quotes, but refuses what only a shell can do (pipes, ;,
// $expansion, comments): cmd is run without a shell, so globs and ~ stay
// literal.
func SplitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				} else if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("%q inside double quotes would need a shell", s[i])
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case strings.IndexByte("|&;<>()$`", c) >= 0 || (c == '#' && !inWord):
			return nil, fmt.Errorf("unquoted %q would need a shell", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return words, nil
}
