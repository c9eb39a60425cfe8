package audit

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"time"
)

// LocalUser is who runs shipit here: "user@machine".
func LocalUser() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	machine, err := os.Hostname()
	if err != nil || machine == "" {
		machine = "unknown"
	}
	return name + "@" + machine
}

// GitAuthor is the project's git identity, "Name <email>": the user.name
// and user.email git uses in dir, else the author of its HEAD commit; ""
// when dir is not a git work tree or git is missing.
func GitAuthor(ctx context.Context, dir string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	name, email := git("config", "user.name"), git("config", "user.email")
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case name != "":
		return name
	}
	return git("log", "-1", "--format=%an <%ae>")
}
