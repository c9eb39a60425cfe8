package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	pathpkg "path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/shipit-dev/shipit/internal/text"
)

// Defaults applied by Parse to keys that shipit.toml leaves out. Where the
// original shipit has a default, it is the same.
const (
	DefaultDeployTo       = "/var/deploy"
	DefaultKeepReleases   = 5
	DefaultBuild          = "remote"
	DefaultWebService     = "web"
	DefaultComposeFile    = "docker-compose.yml"
	DefaultBranch         = "main"
	DefaultStopTimeout    = Duration(30 * time.Second)
	DefaultHealthPath     = "/health"
	DefaultHealthPort     = 8080
	DefaultHealthInterval = Duration(2 * time.Second)
	DefaultHealthTimeout  = Duration(60 * time.Second)
	DefaultHealthRetries  = 15
	DefaultProbeTimeout   = Duration(5 * time.Second)
	DefaultUnhealthyAfter = 3
	DefaultMaxErrorRate   = 0.01
	DefaultMinRequests    = 100
	DefaultVerifyInterval = Duration(5 * time.Second)
)

// OSes are the values [stages.NAME] os accepts: the original shipit's
// (ubuntu, debian, nixos) and alpine.
var OSes = []string{"ubuntu", "debian", "nixos", "alpine"}

// Error is a problem in shipit.toml. Error() is `FILE:LINE:COL: MSG`
// (`FILE: MSG` when there is no position, e.g. the file cannot be read);
// Hint() suggests the fix.
type Error struct {
	File     string // the path as given to Load/Parse
	Line     int    // 1-based; 0 when the error has no position
	Col      int    // 1-based
	Msg      string
	HintText string // returned by Hint()
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Hint suggests how to fix the error ("" when there is nothing to add).
func (e *Error) Hint() string { return e.HintText }

// UnknownStageError is returned by Config.Stage for a stage that
// shipit.toml does not define.
type UnknownStageError struct {
	Name    string
	File    string
	Defined []string // sorted
}

func (e *UnknownStageError) Error() string {
	return fmt.Sprintf("unknown stage %q (%s defines: %s)", e.Name, e.File, strings.Join(e.Defined, ", "))
}

func (e *UnknownStageError) Hint() string {
	h := "pass one of the defined stages with -s: " + strings.Join(e.Defined, ", ")
	if s := text.Closest(e.Name, e.Defined); s != "" {
		h = fmt.Sprintf("did you mean %q? ", s) + h
	}
	return h
}

// Load reads and parses the file (see Parse).
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		msg := err.Error()
		var pe *os.PathError
		if errors.As(err, &pe) {
			msg = "cannot read: " + pe.Err.Error()
		}
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = "run shipit from the project directory that holds shipit.toml, or pass its path with --config"
		}
		return nil, &Error{File: file, Msg: msg, HintText: hint}
	}
	return Parse(data, file)
}

// Parse decodes shipit.toml strictly (unknown keys and wrong types are
// errors), checks required keys and values, and applies the defaults. file
// is used in error messages and stored in Config.Path. Every error is a
// *Error.
func Parse(data []byte, file string) (*Config, error) {
	c := &Config{}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().EnableUnmarshalerInterface()
	if err := dec.Decode(c); err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			// Duration and Batch refuse the value without knowing where
			// it is: find it.
			ix := buildIndex(data)
			if e := checkValues(ix, file); e != nil {
				return nil, e
			}
			if e := checkCommand(data, ix, file); e != nil {
				return nil, e
			}
		}
		return nil, decodeError(data, file, err)
	}
	c.Path = file
	ix := buildIndex(data)
	// The decoder hands a table under a Duration key ([x.interval]) to
	// UnmarshalTOML as its key/value lines; refuse what it let through.
	if e := checkValues(ix, file); e != nil {
		return nil, e
	}
	v := &validator{file: file, ix: ix}
	v.check(c)
	if v.err != nil {
		return nil, v.err
	}
	return c, nil
}

// Stage returns the named stage.
func (c *Config) Stage(name string) (*Stage, error) {
	if s, ok := c.Stages[name]; ok && s != nil {
		return s, nil
	}
	return nil, &UnknownStageError{Name: name, File: c.Path, Defined: c.StageNames()}
}

// StageNames returns the defined stage names, sorted.
func (c *Config) StageNames() []string {
	names := make([]string, 0, len(c.Stages))
	for n := range c.Stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AppPath is the app's directory on the hosts: deploy_to/app.name.
func (c *Config) AppPath() string { return pathpkg.Join(c.Deploy.DeployTo, c.App.Name) }

// ---- decode errors ----

var (
	reMismatch = regexp.MustCompile(`cannot decode TOML (.+?) into`)
	configType = reflect.TypeOf(Config{})
)

func decodeError(data []byte, file string, err error) *Error {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		first := se.Errors[0]
		for _, e := range se.Errors[1:] {
			l1, c1 := first.Position()
			l2, c2 := e.Position()
			if (pos{l2, c2}).before(pos{l1, c1}) {
				first = e
			}
		}
		return unknownKeyError(data, file, &first)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := reMismatch.FindStringSubmatch(msg); m != nil {
			return typeError(data, file, de, m[1])
		}
		return &Error{File: file, Line: line, Col: col, Msg: "syntax error: " + msg,
			HintText: "fix the TOML syntax at this position (strings are quoted, tables are [name], see https://toml.io)"}
	}
	return &Error{File: file, Line: 1, Col: 1, Msg: err.Error()}
}

func unknownKeyError(data []byte, file string, de *toml.DecodeError) *Error {
	line, col := de.Position()
	ix := buildIndex(data)
	p, ok := ix.headers[pos{line, col}]
	if !ok {
		p, ok = ix.keyAt[pos{line, col}]
	}
	if !ok {
		p = path(de.Key())
	}
	// Name the first part the schema does not know: in [deploy.healthcheck]
	// that is healthcheck, not deploy (nor a key under it).
	whole := len(p)
	p = firstUnknown(p)
	isTable := len(p) < whole || strings.Contains(de.Error(), "missing table") || ix.tables[p.key()] != (pos{})
	if q, ok := ix.keys[p.key()]; ok {
		line, col = q.Line, q.Col
	}
	e := &Error{File: file, Line: line, Col: col}
	if len(p) == 0 {
		e.Msg = "unknown key"
		return e
	}
	name, parent := p[len(p)-1], p[:len(p)-1]
	t, _ := typeAt(parent)
	valid := fieldKeys(t)
	where := "in " + parent.table()
	if len(parent) == 0 {
		where = "at the top level"
	}
	if isTable {
		e.Msg = fmt.Sprintf("unknown table %s", p.table())
	} else {
		e.Msg = fmt.Sprintf("unknown key %q %s", name, where)
	}
	if len(valid) > 0 {
		e.HintText = fmt.Sprintf("valid keys %s: %s", where, strings.Join(valid, ", "))
		if s := text.Closest(name, valid); s != "" {
			if isTable {
				e.HintText = fmt.Sprintf("did you mean %s? ", parent.append(s).table()) + e.HintText
			} else {
				e.HintText = fmt.Sprintf("did you mean %q? ", s) + e.HintText
			}
		}
	}
	return e
}

// firstUnknown cuts p after its first part the schema does not have (p
// itself when the schema has every part but the last).
func firstUnknown(p path) path {
	t := reflect.Type(configType)
	for i, part := range p {
		nt, ok := step(t, part)
		if !ok {
			return p[:i+1]
		}
		t = nt
	}
	return p
}

func typeError(data []byte, file string, de *toml.DecodeError, got string) *Error {
	line, col := de.Position()
	ix := buildIndex(data)
	p, ok := ix.valAt[pos{line, col}]
	if !ok {
		if p, ok = ix.keyAt[pos{line, col}]; !ok {
			p = path(de.Key())
		}
	}
	// Walk down as far as the schema goes: for `branch.x = 1` the culprit is
	// branch (a string given a table).
	t := configType
	for i, part := range p {
		nt, ok := step(t, part)
		if !ok {
			p = p[:i]
			break
		}
		t = nt
	}
	e := &Error{File: file, Line: line, Col: col,
		Msg: fmt.Sprintf("wrong type for %s: got %s", p.String(), article(got))}
	if len(p) == 0 {
		e.Msg = fmt.Sprintf("wrong type: got %s", article(got))
	}
	want := describe(t)
	e.HintText = "expected " + want
	switch {
	case strings.HasPrefix(want, "an integer") && got == "string":
		e.HintText += " (write the number without quotes)"
	case strings.HasPrefix(want, "a boolean") && got == "string":
		e.HintText += " (write true or false without quotes)"
	case strings.HasPrefix(want, "a string") && got != "table" && got != "inline table" && got != "array":
		e.HintText += ` (put the value in double quotes)`
	}
	return e
}

var (
	durationType = reflect.TypeOf(Duration(0))
	batchType    = reflect.TypeOf(Batch{})
)

// checkValues finds the first Duration or Batch value of the document that
// does not decode, and says where it is and what is expected.
func checkValues(ix *docIndex, file string) *Error {
	for _, e := range ix.all {
		t, ok := schemaType(e.p)
		if !ok || (t != durationType && t != batchType) {
			continue
		}
		k := e.p.key()
		_, valPos := ix.vals[k] // arrays have no position of their own: use the key's
		var ve *valueError
		switch sc, isVal := ix.scalars[k]; {
		case ix.tables[k] == e.pos, !isVal && ix.keys[k] == e.pos: // [a.interval] or interval.x = 1
			ve = &valueError{typeGot: "table"}
		case isVal && (ix.vals[k] == e.pos || !valPos && ix.keys[k] == e.pos):
			if t == durationType {
				_, ve = durationOf(sc.kind, sc.data)
			} else {
				_, ve = batchOf(sc.kind, sc.data)
			}
		default:
			continue
		}
		if ve == nil {
			continue
		}
		err := &Error{File: file, Line: e.pos.Line, Col: e.pos.Col, HintText: ve.hint}
		if ve.typeGot != "" {
			err.Msg = fmt.Sprintf("wrong type for %s: got %s", e.p, article(ve.typeGot))
			if err.HintText == "" {
				err.HintText = "expected " + describe(t)
			}
		} else {
			err.Msg = fmt.Sprintf("%s: %s", e.p, ve.msg)
		}
		return err
	}
	return nil
}

// checkCommand says where [deploy.health_check] cmd is and what is wrong
// with it (Command refuses the value without knowing where it is).
func checkCommand(data []byte, ix *docIndex, file string) *Error {
	var doc struct {
		Deploy struct {
			HealthCheck map[string]any `toml:"health_check"`
		} `toml:"deploy"`
	}
	if toml.Unmarshal(data, &doc) != nil {
		return nil
	}
	v, ok := doc.Deploy.HealthCheck["cmd"]
	if !ok {
		return nil
	}
	_, ve := commandOf(v)
	if ve == nil {
		return nil
	}
	p := path{"deploy", "health_check", "cmd"}
	at, ok := ix.vals[p.key()]
	if !ok {
		at = ix.keys[p.key()]
	}
	e := &Error{File: file, Line: at.Line, Col: at.Col, HintText: ve.hint}
	if ve.typeGot != "" {
		e.Msg = fmt.Sprintf("wrong type for %s: got %s", p, article(ve.typeGot))
	} else {
		e.Msg = fmt.Sprintf("%s: %s", p, ve.msg)
	}
	return e
}

// schemaType is the Go type at p when p is a path of the schema.
func schemaType(p path) (reflect.Type, bool) {
	t := configType
	for _, part := range p {
		nt, ok := step(t, part)
		if !ok {
			return nil, false
		}
		t = nt
	}
	return t, true
}

func article(kind string) string {
	if kind == "" {
		return "a value"
	}
	switch kind[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an " + kind
	}
	return "a " + kind
}

// describe names the TOML shape a Go type wants.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		return durationWant
	case batchType:
		return batchWant
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint16:
		return "an integer"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Slice:
		et := t.Elem()
		if et.Kind() == reflect.Struct {
			return fmt.Sprintf("an array of tables (each with keys %s)", strings.Join(fieldKeys(et), ", "))
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describe(et), "a "), "an ") + "s"
	case reflect.Map:
		et := t.Elem()
		for et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if et.Kind() == reflect.Struct {
			return fmt.Sprintf("a table of named tables (each with keys %s)", strings.Join(fieldKeys(et), ", "))
		}
		return "a table of " + strings.TrimPrefix(strings.TrimPrefix(describe(et), "a "), "an ") + "s"
	case reflect.Struct:
		return fmt.Sprintf("a table (with keys %s)", strings.Join(fieldKeys(t), ", "))
	}
	return t.String()
}

// step descends one path element in the schema.
func step(t reflect.Type, part string) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if isIdx(part) {
			return nil, false
		}
		for i := 0; i < t.NumField(); i++ {
			if tag := tomlKey(t.Field(i)); tag == part {
				return t.Field(i).Type, true
			}
		}
	case reflect.Map:
		if !isIdx(part) {
			return t.Elem(), true
		}
	case reflect.Slice:
		if isIdx(part) {
			return t.Elem(), true
		}
	}
	return nil, false
}

// typeAt is the schema type at p (the last struct-or-map reached when the
// path leaves the schema).
func typeAt(p path) (reflect.Type, bool) {
	t := reflect.Type(configType)
	for _, part := range p {
		nt, ok := step(t, part)
		if !ok {
			return t, false
		}
		t = nt
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, true
}

func tomlKey(f reflect.StructField) string {
	tag := f.Tag.Get("toml")
	if i := strings.IndexByte(tag, ','); i >= 0 {
		tag = tag[:i]
	}
	if tag == "-" || !f.IsExported() {
		return ""
	}
	if tag == "" {
		return f.Name
	}
	return tag
}

// fieldKeys lists the TOML keys of a struct type in declaration order.
func fieldKeys(t reflect.Type) []string {
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k := tomlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// ---- validation and defaults ----

var (
	reName   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	reEnv    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reDomain = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	reSpace  = regexp.MustCompile(`\s`)
)

type validator struct {
	file string
	ix   *docIndex
	err  *Error // the first error, in check order
}

// at records an error at p's table header or key.
func (v *validator) at(p path, hint, format string, args ...any) {
	v.fail(v.ix.posOf(p), hint, format, args...)
}

// value records an error at p's value.
func (v *validator) value(p path, hint, format string, args ...any) {
	v.fail(v.ix.valPos(p), hint, format, args...)
}

func (v *validator) fail(q pos, hint, format string, args ...any) {
	if v.err != nil {
		return
	}
	v.err = &Error{File: v.file, Line: q.Line, Col: q.Col, Msg: fmt.Sprintf(format, args...), HintText: hint}
}

const nameRule = "lowercase letters, digits, '-' and '_', starting with a letter or digit"

func (v *validator) check(c *Config) {
	v.checkApp(&c.App)
	v.checkDeploy(&c.Deploy)
	v.checkStages(c)
	for i, r := range c.Secrets.Recipients {
		if strings.TrimSpace(r) == "" {
			v.value(path{"secrets", "recipients", idx(i)}, "list age public keys (age1...) or SSH public keys", "empty secrets recipient")
		}
	}
	v.checkAccessories(c.Accessories)
}

// checkApp checks [app] and applies its defaults.
func (v *validator) checkApp(a *App) {
	app := path{"app"}
	switch {
	case a.Name == "" && !v.ix.has(app.append("name")):
		v.at(app, `add name = "myapp" under [app]; it is the Docker Compose project name (`+nameRule+")",
			"missing required key app.name")
	case !reName.MatchString(a.Name):
		v.value(app.append("name"), "app.name is the Docker Compose project name: use "+nameRule,
			"invalid app.name %q", a.Name)
	}
	if a.Branch == "" {
		a.Branch = DefaultBranch
	} else if strings.HasPrefix(a.Branch, "-") || reSpace.MatchString(a.Branch) {
		v.value(app.append("branch"), "use a git branch name such as \"main\"", "invalid app.branch %q", a.Branch)
	}
}

// checkDeploy checks [deploy] and its tables and applies their defaults.
func (v *validator) checkDeploy(d *Deploy) {
	dp := path{"deploy"}
	if d.DeployTo == "" {
		d.DeployTo = DefaultDeployTo
	} else if !strings.HasPrefix(d.DeployTo, "/") {
		v.value(dp.append("deploy_to"), `use an absolute path such as "/var/deploy"`, "deploy.deploy_to must be an absolute path, got %q", d.DeployTo)
	}
	if !v.ix.has(dp.append("keep_releases")) {
		d.KeepReleases = DefaultKeepReleases
	} else if d.KeepReleases < 1 {
		v.value(dp.append("keep_releases"), "keep at least the current release: keep_releases = 1 or more (default 5)",
			"deploy.keep_releases must be at least 1, got %d", d.KeepReleases)
	}
	switch d.Build {
	case "":
		d.Build = DefaultBuild
	case "remote", "local":
	default:
		v.value(dp.append("build"), `build = "remote" builds on the hosts (default); build = "local" builds here and sends the images over SSH`,
			"deploy.build must be \"remote\" or \"local\", got %q", d.Build)
	}
	if d.WebService == "" {
		d.WebService = DefaultWebService
	}
	if d.ComposeFile == "" {
		d.ComposeFile = DefaultComposeFile
	} else if strings.ContainsAny(d.ComposeFile, "\n\r\x00") {
		// Each release records its compose files one a line.
		v.value(dp.append("compose_file"), "name the compose file without line breaks",
			"deploy.compose_file must not contain a line break, got %q", d.ComposeFile)
	}
	v.duration(&d.DrainTimeout, 0, dp.append("drain_timeout"), 0,
		"drain_timeout is how long a stopping release stays out of Traefik's rotation before it is stopped; leave it out to have shipit compute it")
	if v.duration(&d.StopTimeout, DefaultStopTimeout, dp.append("stop_timeout"), 0, "") && d.StopTimeout.Std()%time.Second != 0 {
		v.value(dp.append("stop_timeout"), "Docker's stop grace period is whole seconds: write stop_timeout = 30 or \"30s\"",
			"deploy.stop_timeout must be a whole number of seconds, got %s", d.StopTimeout)
	}
	v.checkHealth(&d.HealthCheck, dp.append("health_check"))
	r, rp := &d.Rollout, dp.append("rollout")
	if !v.ix.has(rp.append("batch")) {
		r.Batch = BatchPercent(100)
	}
	v.duration(&r.Wait, 0, rp.append("wait"), 0, "")
	v.checkVerify(&d.Verify, dp.append("verify"))
}

// checkVerify checks [deploy.verify] and applies its defaults.
func (v *validator) checkVerify(vf *Verify, p path) {
	v.duration(&vf.Window, 0, p.append("window"), 0, "")
	v.duration(&vf.Interval, DefaultVerifyInterval, p.append("interval"), Duration(time.Second),
		"interval is how often shipit reads Traefik's numbers during the window (at least 1s)")
	if !v.ix.has(p.append("max_error_rate")) {
		vf.MaxErrorRate = DefaultMaxErrorRate
	} else if vf.MaxErrorRate < 0 || vf.MaxErrorRate > 1 {
		v.value(p.append("max_error_rate"), "a share of requests: 0.01 is 1%",
			"deploy.verify.max_error_rate must be between 0 and 1, got %v", vf.MaxErrorRate)
	}
	if vf.MaxP95Ratio < 0 || (vf.MaxP95Ratio > 0 && vf.MaxP95Ratio < 1) {
		v.value(p.append("max_p95_ratio"), "the new release's p95 latency may be this many times the previous one's, e.g. 2.0; 0 turns the gate off",
			"deploy.verify.max_p95_ratio must be 0 or at least 1, got %v", vf.MaxP95Ratio)
	}
	if !v.ix.has(p.append("min_requests")) {
		vf.MinRequests = DefaultMinRequests
	} else if vf.MinRequests < 0 {
		v.value(p.append("min_requests"), "the fewest requests a verdict needs",
			"deploy.verify.min_requests must not be negative, got %d", vf.MinRequests)
	}
}

// checkHealth checks [deploy.health_check] and applies its defaults.
func (v *validator) checkHealth(h *HealthCheck, hp path) {
	if h.Path == "" && !v.ix.has(hp.append("path")) {
		h.Path = DefaultHealthPath
	} else if !strings.HasPrefix(h.Path, "/") {
		v.value(hp.append("path"), `write the path from the root, e.g. path = "/up"`, "deploy.health_check.path must start with \"/\", got %q", h.Path)
	}
	if !v.ix.has(hp.append("port")) {
		h.Port = DefaultHealthPort
	} else if h.Port < 1 || h.Port > 65535 {
		v.value(hp.append("port"), "the port the web service listens on inside its container (default 8080)",
			"deploy.health_check.port must be between 1 and 65535, got %d", h.Port)
	}
	v.duration(&h.Interval, DefaultHealthInterval, hp.append("interval"), Duration(time.Millisecond),
		"interval is the time between two probes (Docker's minimum is 1ms)")
	v.duration(&h.Timeout, DefaultHealthTimeout, hp.append("timeout"), 1,
		"timeout is how long a deploy waits for the new release to become healthy (default 60s)")
	if !v.ix.has(hp.append("retries")) {
		h.Retries = DefaultHealthRetries
	} else if h.Retries < 1 {
		v.value(hp.append("retries"), "a new container gets interval x retries to start before failed probes count (default 15)",
			"deploy.health_check.retries must be at least 1, got %d", h.Retries)
	}
	v.duration(&h.ProbeTimeout, DefaultProbeTimeout, hp.append("probe_timeout"), Duration(time.Millisecond),
		"probe_timeout is how long one probe may take (Docker's minimum is 1ms)")
	if !v.ix.has(hp.append("unhealthy_after")) {
		h.UnhealthyAfter = DefaultUnhealthyAfter
	} else if h.UnhealthyAfter < 1 {
		v.value(hp.append("unhealthy_after"), "the number of consecutive failed probes after which a running container leaves Traefik's rotation (default 3)",
			"deploy.health_check.unhealthy_after must be at least 1, got %d", h.UnhealthyAfter)
	}
}

// checkStages checks every [stages.NAME].
func (v *validator) checkStages(c *Config) {
	sp := path{"stages"}
	if len(c.Stages) == 0 {
		v.at(sp, `add a stage with at least one host, e.g. [stages.production] with hosts = [{ address = "203.0.113.10" }]`,
			"no stages defined")
	}
	for _, name := range c.StageNames() {
		v.checkStage(name, c.Stages[name], sp.append(name))
	}
}

// checkStage checks [stages.NAME] at p.
func (v *validator) checkStage(name string, st *Stage, p path) {
	if !reName.MatchString(name) {
		v.at(p, "stage names are used in container labels and Traefik router names: use "+nameRule,
			"invalid stage name %q", name)
	}
	if st == nil || len(st.Hosts) == 0 {
		at := p
		if v.ix.has(p.append("hosts")) {
			at = p.append("hosts")
		}
		v.at(at, fmt.Sprintf(`add hosts = [{ address = "203.0.113.10" }] under [stages.%s], or one [[stages.%s.hosts]] table per host`, quoteKey(name), quoteKey(name)),
			"stage %q has no hosts", name)
		return
	}
	v.port(st.Port, p.append("port"))
	if st.OS != "" || v.ix.has(p.append("os")) {
		if !slices.Contains(OSes, st.OS) {
			v.value(p.append("os"), "valid values: "+strings.Join(OSes, ", ")+"; leave os out to let shipit setup read /etc/os-release",
				"invalid stages.%s.os %q", quoteKey(name), st.OS)
		}
	}
	primary := -1
	for i, host := range st.Hosts {
		hp := p.append("hosts", idx(i))
		switch {
		case host.Address == "" && !v.ix.has(hp.append("address")):
			v.at(hp, `every host needs address = "host" or "host:port"`, "missing required key %s.address", hp)
		case strings.TrimSpace(host.Address) == "":
			v.value(hp.append("address"), `every host needs address = "host" or "host:port"`, "%s.address is empty", hp)
		case reSpace.MatchString(host.Address) || strings.HasPrefix(host.Address, "-"):
			v.value(hp.append("address"), `address is "host" or "host:port" (the user goes in user = "...")`, "invalid %s.address %q", hp, host.Address)
		}
		v.port(host.Port, hp.append("port"))
		if host.Primary && primary >= 0 {
			v.value(hp.append("primary"), "mark one host of the stage primary = true (once-per-stage hooks run there)",
				"%s and %s are both primary", p.append("hosts", idx(primary)), hp)
		} else if host.Primary {
			primary = i
		}
	}
	v.env(st.Env, p.append("env"))
	if dom := st.Traefik.Domain; dom != "" && !reDomain.MatchString(dom) {
		v.value(p.append("traefik", "domain"), `one host name such as "app.example.com" (it becomes the Traefik rule Host(`+"`...`"+`))`,
			"invalid stages.%s.traefik.domain %q", quoteKey(name), dom)
	}
}

// checkAccessories checks every [accessories.NAME].
func (v *validator) checkAccessories(accessories map[string]Accessory) {
	names := make([]string, 0, len(accessories))
	for n := range accessories {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := accessories[n]
		p := path{"accessories", n}
		if !reName.MatchString(n) {
			v.at(p, "accessory names become compose service names: use "+nameRule, "invalid accessory name %q", n)
		}
		if a.Image == "" {
			v.at(p, `add image = "postgres:16" (for example) under [accessories.`+quoteKey(n)+"]", "accessory %q has no image", n)
		}
		v.env(a.Env, p.append("env"))
	}
}

// duration applies def when shipit.toml leaves p out, else checks that
// the value is at least lowest (Duration decoding already refused negative
// values); why explains the key in the hint. It reports whether the key
// was set and valid.
func (v *validator) duration(d *Duration, def Duration, p path, lowest Duration, why string) bool {
	if !v.ix.has(p) {
		*d = def
		return false
	}
	if *d < lowest {
		hint := why
		if hint != "" {
			hint += "; "
		}
		if lowest == 1 {
			v.value(p, hint+`use a positive duration such as "2s" or 2 (seconds)`, "%s must be positive, got %s", p, d)
		} else {
			v.value(p, hint+fmt.Sprintf(`use %s or more, e.g. "2s"`, lowest), "%s must be at least %s, got %s", p, lowest, d)
		}
		return false
	}
	return true
}

func (v *validator) port(n int, p path) {
	if v.ix.has(p) && (n < 1 || n > 65535) {
		v.value(p, "a TCP port between 1 and 65535", "%s must be between 1 and 65535, got %d", p, n)
	}
}

func (v *validator) env(env map[string]string, p path) {
	keys := slices.Sorted(maps.Keys(env))
	for _, k := range keys {
		if !reEnv.MatchString(k) {
			kp := p.append(k)
			v.fail(v.ix.posOf(kp), "environment variable names are letters, digits and '_', not starting with a digit",
				"invalid environment variable name %q in %s", k, p)
		}
	}
}
