---@meta
-- LuaLS definitions for shipit.lua. Copy next to your shipit.lua (or point
-- .luarc.json "workspace.library" at it) for completion and type checks.
-- Runtime: Lua 5.1 (gopher-lua). Reading an undefined global is an error.

---@class shipit.RunOpts
---@field check? boolean  default true: raise on non-zero exit; false: return a Result
---@field stdin? string   fed to the command's standard input
---@field cwd? string     directory to run in (quoted for you)
---@field quiet? boolean  don't echo the command with -v

---@class shipit.Result
---@field stdout string
---@field stderr string
---@field code integer

---@class shipit.Host
---@field host string              host address as written in shipit.toml
---@field stage string
---@field app string
---@field app_path string          <deploy_to>/<app>
---@field release string           release name (YYYYMMDD-HHMMSS, UTC)
---@field release_path string      <app_path>/releases/<release>
---@field previous_release string  release that was current before this deploy ("" on the first)
---@field shared_path string       <app_path>/shared
---@field releases_path string     <app_path>/releases
---@field vars table               scratch table shared by the steps of one run on this host
local Host = {}

--- Run a command on the host. A string is a shell command line (you quote);
--- a list of words is quoted for you. Returns stdout, or a Result when opts.check == false.
---@param cmd string|string[]
---@param opts? shipit.RunOpts
---@return string|shipit.Result
function Host:run(cmd, opts) end

--- Write a file on the host atomically (SFTP, temp file + rename).
---@param path string
---@param content string
---@param mode? string|integer  octal, e.g. "0600" or 600 (default 0644)
function Host:put(path, content, mode) end

---@param path string
---@return boolean
function Host:exists(path) end

--- Read a file on the host.
---@param path string
---@return string
function Host:read(path) end

--- Run fn before the named step or task, on each host.
---@param name string
---@param fn fun(h: shipit.Host)
function before(name, fn) end

--- Run fn after the named step or task, on each host.
---@param name string
---@param fn fun(h: shipit.Host)
function after(name, fn) end

--- Run fn when a deploy (or any task) fails on a host, after the recipe's own clean-up.
---@param fn fun(h: shipit.Host, err: string)
function on_failure(fn) end

--- Define a task, or replace a step (its hooks stay attached). A list of
--- names defines a pipeline.
---@param name string
---@param fn fun(h: shipit.Host)|string[]
---@param desc? string
function task(name, fn, desc) end

--- Run another task (with its hooks) on the current host.
---@param name string
function invoke(name) end

--- Run a shell command on this machine, in the project directory.
---@param cmd string
---@param opts? {check?: boolean}
---@return string|shipit.Result
function run_local(cmd, opts) end

--- Abort the current step with a message.
---@param msg string
function fail(msg) end

--- Read-only view of shipit.toml (keys as in the file). Misspelled keys are errors.
---@type table
config = {}

--- Command-line values for the running command (e.g. `shipit logs --tail 50`
--- gives params.tail == "50"); read-only; absent keys are nil.
---@type table<string, string>
params = {}

log = {}
---@param fmt string
---@param ... any
function log.info(fmt, ...) end
---@param fmt string
---@param ... any
function log.warn(fmt, ...) end
---@param fmt string
---@param ... any
function log.debug(fmt, ...) end
