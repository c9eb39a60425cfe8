package compose

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/shipit-dev/shipit/internal/hint"
)

// Files are the compose file names Compose itself looks for, in its order.
var Files = []string{"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"}

// FindFile returns the first of Files that exists in dir, else Files[0].
func FindFile(dir string) string {
	for _, f := range Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return f
		}
	}
	return Files[0]
}

// Project is what shipit reads of a compose model: a compose file as
// written, or the output of `compose config` (YAML, or JSON which is YAML).
// It is the one parser of compose files in shipit (init, the override,
// local builds).
type Project struct {
	Name     string
	Services map[string]Service
	Order    []string // service names sorted
	Written  []string // service names in the file's order
}

// Service is one service of a Project.
type Service struct {
	Image         string `yaml:"image"`
	Build         any    `yaml:"build"` // string context, or a map with context and dockerfile
	Ports         []any  `yaml:"ports"`
	Expose        []any  `yaml:"expose"`
	NetworkMode   string `yaml:"network_mode"`
	ContainerName string `yaml:"container_name"`
}

// ParseError is a compose file that is not YAML.
type ParseError struct{ Err error }

func (e *ParseError) Error() string {
	msg := e.Err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads a compose model. Unknown keys are ignored: Compose checks
// them, shipit reads only what it acts on.
func Parse(data []byte) (*Project, error) {
	var doc struct {
		Name     string        `yaml:"name"`
		Services yaml.MapSlice `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ParseError{Err: err}
	}
	p := &Project{Name: doc.Name, Services: map[string]Service{}}
	for _, item := range doc.Services {
		name := fmt.Sprint(item.Key)
		def := item.Value
		var s Service
		if def != nil {
			raw, err := yaml.Marshal(def)
			if err != nil {
				return nil, &ParseError{Err: fmt.Errorf("service %s: %w", name, err)}
			}
			if err := yaml.Unmarshal(raw, &s); err != nil {
				return nil, &ParseError{Err: fmt.Errorf("service %s: %w", name, err)}
			}
		}
		p.Services[name] = s
		p.Written = append(p.Written, name)
	}
	p.Order = append([]string(nil), p.Written...)
	sort.Strings(p.Order)
	return p, nil
}

// Builds reports whether the service has a build: section.
func (s Service) Builds() bool { return s.Build != nil }

// Publishes reports whether the service publishes host ports.
func (s Service) Publishes() bool { return len(s.Ports) > 0 }

// BuildContext is the service's build context and Dockerfile, relative to
// the project directory ("." and "Dockerfile" by default).
func (s Service) BuildContext() (dir, dockerfile string) {
	dir, dockerfile = ".", "Dockerfile"
	switch b := s.Build.(type) {
	case string:
		dir = b
	case map[string]any:
		if v, ok := b["context"].(string); ok {
			dir = v
		}
		if v, ok := b["dockerfile"].(string); ok {
			dockerfile = v
		}
	}
	return dir, dockerfile
}

// ContainerPort is the port the service listens on inside its container,
// as the compose file says: expose, then the container side of ports; 0
// when it says nothing.
func (s Service) ContainerPort() int {
	for _, e := range s.Expose {
		if p := leadingPort(fmt.Sprint(e)); p > 0 {
			return p
		}
	}
	for _, e := range s.Ports {
		v := fmt.Sprint(e)
		if m, ok := e.(map[string]any); ok {
			v = fmt.Sprint(m["target"])
		}
		v = strings.Split(v, "/")[0]
		if i := strings.LastIndex(v, ":"); i >= 0 {
			v = v[i+1:]
		}
		if p := leadingPort(v); p > 0 {
			return p
		}
	}
	return 0
}

// LeadingPort reads "8080", "8080/tcp" or "8080-8090" as 8080 (0 if none).
func LeadingPort(s string) int { return leadingPort(s) }

func leadingPort(s string) int {
	s = strings.Split(strings.TrimSpace(s), "/")[0]
	s = strings.Split(s, "-")[0]
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		return 0
	}
	return p
}

// CheckService refuses a service name that the compose file in dir (as
// shipit.toml names it) does not declare, so that `shipit logs NAME` says
// so before it contacts a host. Without a readable file it says nothing:
// the host's release decides.
func CheckService(dir, file, service string) error {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	p, err := Parse(data)
	if err != nil || len(p.Written) == 0 {
		return nil
	}
	if _, ok := p.Services[service]; ok {
		return nil
	}
	return hint.New(fmt.Sprintf("no service %q in %s (services: %s)", service, file, strings.Join(p.Written, ", ")),
		"name one of the compose file's services, or leave it out for all of them")
}
