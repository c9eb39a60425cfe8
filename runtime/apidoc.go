package runtime

import (
	"fmt"
	"strings"
)

// apiClasses are the LuaLS types the API's signatures name.
const apiClasses = `---@class shipit.RunOpts
---@field check? boolean  default true: raise on non-zero exit; false: return a Result
---@field stdin? string   fed to the command's standard input
---@field cwd? string     directory to run in (quoted for you)
---@field quiet? boolean  don't echo the command with -v

---@class shipit.Result
---@field stdout string
---@field stderr string
---@field code integer

---@class shipit.StepSpec  a pipeline entry with its contract: { "deploy:push", sets = { "git_sha" } }
---@field [1] string        the step name
---@field sets? string[]    fields of h.state (or release, previous_release) the step must set
---@field marks? string     h.state field set to true before the step's body runs (and journaled)

---@class shipit.Log
---@field info fun(fmt: string, ...: any)
---@field warn fun(fmt: string, ...: any)
---@field debug fun(fmt: string, ...: any)

---@class shipit.Lock
---@field current_release string
---@field previous_release string
---@field git_sha string
---@field secrets_hash string
---@field deployed_at string

---@class shipit.OverrideParams
---@field app string
---@field stage string
---@field release string
---@field web_service string
---@field compose_v1? boolean
---@field domain? string
---@field tls? boolean
---@field cert_resolver? string
---@field env_file? string
---@field images? table<string, string>
---@field base string

---@class shipit.HealthSettings
---@field port integer
---@field path string
---@field shell string
---@field exec string[]
---@field url string
---@field check string
---@field interval number
---@field timeout number
---@field probe_timeout number
---@field retries integer
---@field unhealthy_after integer
---@field start_period number
---@field drain_timeout number
---@field stop_timeout number

---@class shipit.MetricsWindow
---@field requests number
---@field errors number
---@field error_rate number
---@field p95 number
---@field p95_before number
---@field seconds number

---@class shipit.AccessorySpec
---@field name string
---@field container string
---@field image string
---@field hash string
---@field run string
---@field env_file string
---@field volume_create string[]
---@field named_volumes string[]
---@field ports string[]
---@field volumes string[]

---@class shipit.AccessoryState
---@field managed boolean
---@field app string
---@field accessory string
---@field hash string
---@field config string
---@field status string
---@field running boolean
---@field started_at string
---@field finished_at string
---@field exit_code integer
---@field restart_count integer
---@field image string
---@field restart string
---@field networks string[]
---@field ports string[]
---@field mounts string[]
`

// APIDefinitions renders recipes/shipit.d.lua, the LuaLS ---@meta file for
// shipit.lua authors, from Globals, HostMembers and the registered modules.
func APIDefinitions() string {
	var b strings.Builder
	b.WriteString(`---@meta
-- LuaLS definitions for shipit.lua, generated from the Go sources of the
-- runtime and its modules (do not edit: run ` + "`make api-docs`" + `). Copy next to
-- your shipit.lua (or point .luarc.json "workspace.library" at it) for
-- completion and type checks. Runtime: Lua 5.1 (gopher-lua); reading an
-- undefined global is an error.

`)
	b.WriteString(apiClasses)
	b.WriteString("\n---@class shipit.Host\n")
	for _, m := range HostMembers {
		if m.Value {
			fmt.Fprintf(&b, "---@field %s %s  %s\n", m.Name, m.Returns, oneLine(m.Doc))
		}
	}
	b.WriteString("local Host = {}\n")
	for _, m := range HostMembers {
		if !m.Value {
			writeFunc(&b, "Host:"+m.Name, m)
		}
	}
	b.WriteString("\n-- Globals\n")
	for _, g := range Globals {
		if g.Value {
			fmt.Fprintf(&b, "\n--- %s\n---@type %s\n%s = {}\n", oneLine(g.Doc), g.Returns, g.Name)
			continue
		}
		writeFunc(&b, g.Name, g)
	}
	b.WriteString("\n-- Modules: require(\"shipit.<name>\")\n")
	mods := Modules()
	for _, m := range mods {
		cls := m.Name
		fmt.Fprintf(&b, "\n--- %s\n---@class %s\nlocal %s = {}\n", oneLine(m.Doc), cls, luaIdent(m.Name))
		for _, f := range m.Funcs {
			if f.Value {
				fmt.Fprintf(&b, "--- %s\n---@type %s\n%s.%s = nil\n", oneLine(f.Doc), f.Returns, luaIdent(m.Name), f.Name)
				continue
			}
			writeFunc(&b, luaIdent(m.Name)+"."+f.Name, f)
		}
	}
	b.WriteString("\n--- Loads a module; shipit's own are listed here.\n")
	for _, m := range mods {
		fmt.Fprintf(&b, "---@overload fun(name: %q): %s\n", m.Name, m.Name)
	}
	b.WriteString("---@param name string\n---@return any\nfunction require(name) end\n")
	return b.String()
}

func writeFunc(b *strings.Builder, name string, f Func) {
	fmt.Fprintf(b, "\n--- %s\n", oneLine(f.Doc))
	var names []string
	for _, p := range splitArgs(f.Args) {
		n, typ, _ := strings.Cut(p, ":")
		n, typ = strings.TrimSpace(n), strings.TrimSpace(typ)
		fmt.Fprintf(b, "---@param %s %s\n", n, typ)
		names = append(names, strings.TrimSuffix(n, "?"))
	}
	if f.Returns != "" {
		fmt.Fprintf(b, "---@return %s\n", f.Returns)
	}
	fmt.Fprintf(b, "function %s(%s) end\n", name, strings.Join(names, ", "))
}

// APIReference renders the reference tables of docs/lua-api.md.
func APIReference() string {
	var b strings.Builder
	b.WriteString("### Globals\n\n| global | meaning |\n| --- | --- |\n")
	for _, g := range Globals {
		fmt.Fprintf(&b, "| %s | %s |\n", mdSig(g.Name, g), mdCell(g.Doc))
	}
	b.WriteString("\n### The host context `h`\n\n| member | meaning |\n| --- | --- |\n")
	for _, m := range HostMembers {
		name := "h." + m.Name
		if !m.Value {
			name = "h:" + m.Name
		}
		fmt.Fprintf(&b, "| %s | %s |\n", mdSig(name, m), mdCell(m.Doc))
	}
	b.WriteString("\n### Modules\n")
	for _, m := range Modules() {
		fmt.Fprintf(&b, "\n#### `require(%q)`\n\n%s\n\n| function | meaning |\n| --- | --- |\n", m.Name, m.Doc)
		for _, f := range m.Funcs {
			fmt.Fprintf(&b, "| %s | %s |\n", mdSig(luaIdent(m.Name)+"."+f.Name, f), mdCell(f.Doc))
		}
	}
	return b.String()
}

func mdSig(name string, f Func) string {
	if f.Value {
		return "`" + name + "`"
	}
	var names []string
	for _, p := range splitArgs(f.Args) {
		n, _, _ := strings.Cut(p, ":")
		names = append(names, strings.TrimSpace(n))
	}
	sig := name + "(" + strings.Join(names, ", ") + ")"
	if f.Returns != "" {
		sig += " → " + f.Returns
	}
	return "`" + strings.ReplaceAll(sig, "|", "\\|") + "`"
}

func mdCell(s string) string { return strings.ReplaceAll(oneLine(s), "|", "\\|") }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// luaIdent is the local name a module is documented under: shipit.compose -> compose.
func luaIdent(module string) string {
	return module[strings.LastIndexByte(module, '.')+1:]
}

// splitArgs splits "a: T, b?: {x: U, y: V}" at the commas outside brackets.
func splitArgs(args string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range args {
		switch r {
		case '{', '(', '<', '[':
			depth++
		case '}', ')', '>', ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(args[start:i]))
				start = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(args[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}
