package runtime

import (
	"fmt"
	"strings"
)

// The documentation of the Lua API that the runtime itself provides: the
// globals of every script and the members of the host context h. With the
// Funcs of every registered Module it is the one source from which
// recipes/shipit.d.lua and the reference part of docs/lua-api.md are
// generated (APIDefinitions, APIReference); tests check both against what
// a state really holds.

// Globals documents the globals every script sees.
var Globals = []Func{
	{Name: "before", Args: "name: string, fn: fun(h: shipit.Host), opts?: {once?: boolean}",
		Doc: "Runs fn before the named step or task, on each host (with once = true: see once)."},
	{Name: "after", Args: "name: string, fn: fun(h: shipit.Host), opts?: {once?: boolean}",
		Doc: "Runs fn after the named step or task, on each host (with once = true: see once)."},
	{Name: "once", Args: "name: string, fn: fun(h: shipit.Host)",
		Doc: "Runs fn before the named step on one host only, the stage's primary (the first, or the one with primary = true), while the other hosts wait at that point; if it fails, every host fails there (and undoes). For migrations, cache warm-ups, one notification."},
	{Name: "on_failure", Args: "task_or_fn: string|fun(h: shipit.Host, err: string), fn?: fun(h: shipit.Host, err: string)",
		Doc: "`on_failure(fn)` runs fn when any command fails on a host; `on_failure(\"deploy\", fn)` only when that task fails (after the recipe's own undo)."},
	{Name: "task", Args: "name: string, body: fun(h: shipit.Host)|(string|shipit.StepSpec)[], desc?: string",
		Doc: "Defines a task, or replaces a step (its hooks stay attached); a list defines a pipeline, whose entries may declare a step's contract."},
	{Name: "invoke", Args: "name: string", Doc: "Runs another task (with its hooks) on the current host."},
	{Name: "run_local", Args: "cmd: string, opts?: {check?: boolean}", Returns: "string|shipit.Result",
		Doc: "Runs a shell command on this machine in the project directory; returns stdout, or a Result with check = false."},
	{Name: "fail", Args: "msg: string", Doc: "Aborts the current step with a message."},
	{Name: "print", Args: "...: any", Doc: "A message under the host's prefix (same as log.info)."},
	{Name: "config", Value: true, Returns: "table",
		Doc: "Read-only view of shipit.toml, keys as in the file (config.deploy.health_check.port); a misspelled key is an error."},
	{Name: "params", Value: true, Returns: "table<string, string>",
		Doc: "Read-only command-line values of the running command (`shipit logs --tail 50` gives params.tail == \"50\"); absent keys are nil."},
	{Name: "log", Value: true, Returns: "shipit.Log", Doc: "log.info/warn/debug(fmt, ...): messages under the host's prefix (debug only with -v)."},
}

// HostMembers documents the fields and methods of h.
var HostMembers = []Func{
	{Name: "run", Args: "cmd: string|string[], opts?: shipit.RunOpts", Returns: "string|shipit.Result",
		Doc: "Runs cmd on the host over SSH and returns stdout; raises on a non-zero exit unless opts.check == false, then returns a Result. A string is a shell line (you quote); a list of words is quoted for you."},
	{Name: "put", Args: "path: string, content: string, mode?: string|integer",
		Doc: "Writes a file on the host atomically (SFTP, temp file then rename), created with its mode (octal, \"0600\" or 600; default 0644)."},
	{Name: "exists", Args: "path: string", Returns: "boolean", Doc: "True if the path exists (a dangling symlink exists)."},
	{Name: "read", Args: "path: string", Returns: "string", Doc: "The file's content."},
	{Name: "host", Value: true, Returns: "string", Doc: "The host's address as written in shipit.toml."},
	{Name: "stage", Value: true, Returns: "string", Doc: "The stage name."},
	{Name: "app", Value: true, Returns: "string", Doc: "The app name."},
	{Name: "app_path", Value: true, Returns: "string", Doc: "<deploy_to>/<app>."},
	{Name: "release", Value: true, Returns: "string", Doc: "The release being deployed or rolled back to (for `shipit run`: the current one); writable."},
	{Name: "release_path", Value: true, Returns: "string", Doc: "<app_path>/releases/<release>."},
	{Name: "previous_release", Value: true, Returns: "string", Doc: "The release that was current before this deploy (\"\" on the first); writable."},
	{Name: "shared_path", Value: true, Returns: "string", Doc: "<app_path>/shared."},
	{Name: "releases_path", Value: true, Returns: "string", Doc: "<app_path>/releases."},
	{Name: "primary", Value: true, Returns: "boolean", Doc: "True on the stage's primary host (the first, or the one with primary = true)."},
	{Name: "state", Value: true, Returns: "table",
		Doc: "The fields the pipelines' contracts declare (git_sha, marks such as started); reading or writing another is an error."},
	{Name: "vars", Value: true, Returns: "table", Doc: "A free scratch table the steps of one run share on this host."},
}

func hostMemberNames() []string {
	names := make([]string, len(HostMembers))
	for i, m := range HostMembers {
		names[i] = m.Name
	}
	return names
}

// CheckHostMembersDocumented fails when h has a member HostMembers does not
// document, or documents one h lacks.
func CheckHostMembersDocumented() error {
	doc := map[string]bool{}
	for _, m := range HostMembers {
		doc[m.Name] = true
		_, isMethod := hostMethods[m.Name]
		_, isField := hostGetters[m.Name]
		if !isMethod && !isField {
			return fmt.Errorf("HostMembers documents h.%s, which h does not have", m.Name)
		}
		if isMethod == m.Value {
			return fmt.Errorf("HostMembers documents h.%s as a %s", m.Name, map[bool]string{true: "field", false: "method"}[m.Value])
		}
	}
	for name := range hostMethods {
		if !doc[name] {
			return fmt.Errorf("h:%s is not documented in HostMembers", name)
		}
	}
	for name := range hostGetters {
		if !doc[name] {
			return fmt.Errorf("h.%s is not documented in HostMembers", name)
		}
	}
	return nil
}

func globalNames() string {
	names := make([]string, 0, len(Globals)+1)
	for _, g := range Globals {
		names = append(names, g.Name)
	}
	return strings.Join(append(names, "require"), ", ")
}
