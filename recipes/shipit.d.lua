---@meta
-- LuaLS definitions for shipit.lua, generated from the Go sources of the
-- runtime and its modules (do not edit: run `make api-docs`). Copy next to
-- your shipit.lua (or point .luarc.json "workspace.library" at it) for
-- completion and type checks. Runtime: Lua 5.1 (gopher-lua); reading an
-- undefined global is an error.

---@class shipit.RunOpts
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

---@class shipit.Host
---@field host string  The host's address as written in shipit.toml.
---@field stage string  The stage name.
---@field app string  The app name.
---@field app_path string  <deploy_to>/<app>.
---@field release string  The release being deployed or rolled back to (for `shipit run`: the current one); writable.
---@field release_path string  <app_path>/releases/<release>.
---@field previous_release string  The release that was current before this deploy ("" on the first); writable.
---@field shared_path string  <app_path>/shared.
---@field releases_path string  <app_path>/releases.
---@field primary boolean  True on the stage's primary host (the first, or the one with primary = true).
---@field state table  The fields the pipelines' contracts declare (git_sha, marks such as started); reading or writing another is an error.
---@field vars table  A free scratch table the steps of one run share on this host.
local Host = {}

--- Runs cmd on the host over SSH and returns stdout; raises on a non-zero exit unless opts.check == false, then returns a Result. A string is a shell line (you quote); a list of words is quoted for you.
---@param cmd string|string[]
---@param opts? shipit.RunOpts
---@return string|shipit.Result
function Host:run(cmd, opts) end

--- Writes a file on the host atomically (SFTP, temp file then rename), created with its mode (octal, "0600" or 600; default 0644).
---@param path string
---@param content string
---@param mode? string|integer
function Host:put(path, content, mode) end

--- True if the path exists (a dangling symlink exists).
---@param path string
---@return boolean
function Host:exists(path) end

--- The file's content.
---@param path string
---@return string
function Host:read(path) end

-- Globals

--- Runs fn before the named step or task, on each host (with once = true: see once).
---@param name string
---@param fn fun(h: shipit.Host)
---@param opts? {once?: boolean}
function before(name, fn, opts) end

--- Runs fn after the named step or task, on each host (with once = true: see once).
---@param name string
---@param fn fun(h: shipit.Host)
---@param opts? {once?: boolean}
function after(name, fn, opts) end

--- Runs fn before the named step on one host only, the stage's primary (the first, or the one with primary = true), while the other hosts wait at that point; if it fails, every host fails there (and undoes). For migrations, cache warm-ups, one notification.
---@param name string
---@param fn fun(h: shipit.Host)
function once(name, fn) end

--- `on_failure(fn)` runs fn when any command fails on a host; `on_failure("deploy", fn)` only when that task fails (after the recipe's own undo).
---@param task_or_fn string|fun(h: shipit.Host, err: string)
---@param fn? fun(h: shipit.Host, err: string)
function on_failure(task_or_fn, fn) end

--- Defines a task, or replaces a step (its hooks stay attached); a list defines a pipeline, whose entries may declare a step's contract.
---@param name string
---@param body fun(h: shipit.Host)|(string|shipit.StepSpec)[]
---@param desc? string
function task(name, body, desc) end

--- Runs another task (with its hooks) on the current host.
---@param name string
function invoke(name) end

--- Runs a shell command on this machine in the project directory; returns stdout, or a Result with check = false.
---@param cmd string
---@param opts? {check?: boolean}
---@return string|shipit.Result
function run_local(cmd, opts) end

--- Aborts the current step with a message.
---@param msg string
function fail(msg) end

--- A message under the host's prefix (same as log.info).
---@param ... any
function print(...) end

--- Read-only view of shipit.toml, keys as in the file (config.deploy.health_check.port); a misspelled key is an error.
---@type table
config = {}

--- Read-only command-line values of the running command (`shipit logs --tail 50` gives params.tail == "50"); absent keys are nil.
---@type table<string, string>
params = {}

--- log.info/warn/debug(fmt, ...): messages under the host's prefix (debug only with -v).
---@type shipit.Log
log = {}

-- Modules: require("shipit.<name>")

--- Accessories (databases, caches) from [accessories.NAME]: their docker run, state and logs.
---@class shipit.accessory
local accessory = {}

--- What boot runs for the accessory: container name, image, docker run command, config hash, volumes.
---@param name string
---@return shipit.AccessorySpec
function accessory.spec(name) end

--- The container's state from docker inspect; nil when there is no such container.
---@param h shipit.Host
---@param container string
---@return shipit.AccessoryState|nil
function accessory.inspect(h, container) end

--- What changed between the config recorded on a running container and shipit.toml, one line per change.
---@param name string
---@param recorded_config string
---@return string[]
function accessory.diff(name, recorded_config) end

--- Streams `docker logs` of a container as host output lines, each prefixed.
---@param h shipit.Host
---@param opts {container: string, tail?: string, follow?: boolean, since?: string, prefix?: string}
function accessory.logs(h, opts) end

--- The host's Compose (v2 plugin or v1) and the health wait of a release.
---@class shipit.compose
local compose = {}

--- `docker compose` or `docker-compose`, detected once per host.
---@param h shipit.Host
---@return string
function compose.command(h) end

--- The host's Compose generation.
---@param h shipit.Host
---@return "v2"|"v1"
function compose.flavor(h) end

--- Starts detecting the host's Compose in the background, so that it overlaps a slow step (the deploy lock); the first command or flavor waits for it.
---@param h shipit.Host
function compose.prefetch(h) end

--- How a release's compose project is invoked: its project and files (args: the quoted -p/-f words), or original = true for a release the original shipit started (compose ran in its directory).
---@param h shipit.Host
---@param name string
---@return {dir: string, project: string, files: string[], original: boolean, args: string}
function compose.release(h, name) end

--- Waits until every container of the service is healthy, at most timeout (default: [deploy.health_check] timeout), asking Docker every second or every interval if shorter; fails at once when one turns unhealthy or exits, with the container's last log lines, the check probed and its last outputs.
---@param h shipit.Host
---@param opts {project: string, service: string, timeout?: number|string}
function compose.wait_healthy(h, opts) end

--- The app's environment on the host: shared/.env from its three sources, snapshots per release.
---@class shipit.env
local env = {}

--- Writes shared/.env (0600) when shipit.toml env, `shipit config` values or secrets changed.
---@param h shipit.Host
---@return {written: boolean, secrets_hash: string, keys: integer}
function env.sync(h) end

--- Copies shared/.env into the release (h.release by default): what a rollback to it restores. link = true also links the release's .env to shared/.env, in the same command.
---@param h shipit.Host
---@param release? string
---@param opts? {link?: boolean}
function env.snapshot(h, release, opts) end

--- Makes a release's snapshot the shared env (a rollback runs old code with the env it was deployed with).
---@param h shipit.Host
---@param release string
function env.restore(h, release) end

--- Keeps the shared env in .shipit/env.undo before a change; the host's journal puts it back if the change is undone.
---@param h shipit.Host
function env.backup(h) end

--- Code push to the host's bare repository, as an incremental git bundle over SFTP.
---@class shipit.git
local git = {}

--- Makes the host's bare repo hold the branch's commit; sends only what the host lacks.
---@param h shipit.Host
---@param opts {branch: string, repo: string}
---@return {sha: string, bytes: integer, incremental: boolean, skipped: boolean}
function git.push(h, opts) end

--- The app's health settings, built once from shipit.toml ([deploy.health_check], drain_timeout, stop_timeout).
---@class shipit.health
local health = {}

--- The settings with defaults applied, durations in seconds: port, path, shell, exec, url ("" with a cmd), check (as messages show it), interval, timeout, probe_timeout, retries, unhealthy_after, start_period, drain_timeout (automatic when 0 in shipit.toml), stop_timeout.
---@return shipit.HealthSettings
function health.settings() end

--- The per-host lock (one deploy, rollback or setup of an app at a time) and the journal of the change in flight.
---@class shipit.hostlock
local hostlock = {}

--- Takes the app's lock on the host until this host's run ends, after the host settled what an earlier run left; waits up to --lock-wait, else raises naming the holder.
---@param h shipit.Host
---@param what? string
function hostlock.acquire(h, what) end

--- Starts the journal of the change (meta: op = "deploy"|"rollback", compose = the compose command): from now on every contract mark is written to the host, and the host settles the change itself if shipit goes away.
---@param h shipit.Host
---@param meta table<string, string>
function hostlock.begin(h, meta) end

--- Has the host settle the journal now: undo the change, or complete it when it is past its point of no return.
---@param h shipit.Host
function hostlock.settle(h) end

--- HTTP requests from the machine running shipit (notifications, webhooks). A URL or header value "secret:NAME" is the stage's secret NAME, never shown in messages.
---@class shipit.http
local http = {}

--- GETs url and returns the answer (headers with lower-case names; json: the decoded body when opts.json and the answer is JSON). Raises on a status outside 200-299 or no answer, naming the host, the URL and the status with the answer's first line. opts.timeout: seconds or "5s" (default 10s); Ctrl-C aborts the request.
---@param url string
---@param opts? {headers?: table<string, string>, timeout?: number|string, json?: boolean}
---@return {status: integer, body: string, headers: table<string, string>, json: any}
function http.get(url, opts) end

--- POSTs body (a string; with opts.json = true a table, sent as JSON with Content-Type application/json) and returns the answer as http.get does. The stage's secret values in the body are replaced by ***, as in everything shipit prints.
---@param url string
---@param body? string|table
---@param opts? {headers?: table<string, string>, timeout?: number|string, json?: boolean}
---@return {status: integer, body: string, headers: table<string, string>, json: any}
function http.post(url, body, opts) end

--- Local image builds from the deployed commit, and their transfer to hosts over SSH: only the layers a host lacks (no registry).
---@class shipit.images
local images = {}

--- The image each service with a build: section gets for this release (service -> ref).
---@param h shipit.Host
---@param opts {compose_file: string, commit: string}
---@return table<string, string>
function images.plan_local(h, opts) end

--- Builds the commit's services on this machine, once per command run, and tags them for the release.
---@param h shipit.Host
---@param opts {compose_file: string, commit: string}
function images.build_local(h, opts) end

--- Sends what the host's engine lacks, layer by layer (compressed once, shared by every host); images it has are only tagged.
---@param h shipit.Host
---@param refs table<string, string>
---@return {sent: string[], skipped: string[], bytes: integer, layers_sent: integer, layers_reused: integer, layers_skipped: integer}
function images.transfer(h, refs) end

--- JSON encoding and decoding.
---@class shipit.json
local json = {}

--- Indented JSON, object keys sorted; a table with keys 1..n is an array.
---@param value any
---@return string
function json.encode(value) end

--- The value of a JSON text; raises on invalid JSON.
---@param text string
---@return any
function json.decode(text) end

--- A release's lifecycle on the host: drain, stop, switch current, write shipit.lock. One implementation, shared with the host's lock holder, which settles an interrupted deploy with the same steps and timeouts.
---@class shipit.lifecycle
local lifecycle = {}

--- Takes the project's routed containers out of Traefik's rotation (the drain marker in dir fails their health check) and waits, on the host, until Traefik no longer routes to them (its API, else Docker's unhealthy plus Traefik's throttle), at most timeout (default: [deploy] drain_timeout). Returns what happened, and whether they are out of rotation (false: timed out or no drain could be made; not an error).
---@param h shipit.Host
---@param opts {project: string, dir: string, timeout?: number|string}
---@return string, boolean
function lifecycle.drain(h, opts) end

--- Drains the release in dir (compose project), stops it with [deploy] stop_timeout as grace period (grace instead once drained, when shorter: see shipit.traefik's stop_grace) and removes its containers (`down --remove-orphans` plus down_args, e.g. "--rmi local"). Raises only when containers of it still run afterwards. Under the deploy lock it waits for the host's holder and never runs once the holder settled the run.
---@param h shipit.Host
---@param opts {project: string, dir: string, grace?: integer, down_args?: string}
function lifecycle.stop(h, opts) end

--- The drain marker of the release in dir: while it exists, the release's health check fails (remove it before starting a drained release again).
---@param dir string
---@return string
function lifecycle.drain_marker(dir) end

--- Points <app>/current at releases/<release> (a symlink replaced by an atomic rename).
---@param h shipit.Host
---@param release string
function lifecycle.switch(h, release) end

--- Writes shipit.lock atomically, deployed_at now; stamp also records the time in the release's .shipit-deployed-at. Names must be release names, git_sha and secrets_hash lowercase hex.
---@param h shipit.Host
---@param lock {current_release: string, previous_release?: string, git_sha?: string, secrets_hash?: string, stamp?: boolean}
function lifecycle.write_lock(h, lock) end

--- shipit.lock, the JSON file naming the current and previous release on each host.
---@class shipit.lockfile
local lockfile = {}

--- The file's JSON, fields in the spec's order.
---@param lock shipit.Lock
---@return string
function lockfile.encode(lock) end

--- Parses the file; absent fields are ""; raises on invalid JSON.
---@param text string
---@return shipit.Lock
function lockfile.decode(text) end

--- Traefik's numbers of a routed service on this host (the metrics `shipit setup` turns on), as [deploy.verify] reads them.
---@class shipit.metrics
local metrics = {}

--- Reads the counters, waits seconds (default 10), reads them again: requests, errors (5xx), error_rate, p95 (seconds, -1 without requests) over that window, and p95_before (the service's whole history before it). service defaults to the app's (<app>-<stage>). Raises when the host's Traefik serves no metrics.
---@param h shipit.Host
---@param opts? {seconds?: number, service?: string}
---@return shipit.MetricsWindow
function metrics.window(h, opts) end

--- The service's counters since Traefik started (the same fields; p95_before = p95).
---@param h shipit.Host
---@param opts? {service?: string}
---@return shipit.MetricsWindow
function metrics.total(h, opts) end

--- The docker-compose.override.yml of a release: Traefik labels and network, health check, env file, images.
---@class shipit.override
local override = {}
--- Shell command creating the external traefik network when missing (safe to run concurrently).
---@type string
override.ensure_network_cmd = nil

--- The override YAML, with the web service's health check from [deploy.health_check], and notes to tell the user (published ports it removed); raises with a hint when the base compose file cannot be deployed (published ports on compose v1, container_name...).
---@param params shipit.OverrideParams
---@return string, string[]
function override.generate(params) end

--- Links shipit's health probe (a static binary for the host's architecture, sent once per host and version) into the release directory dir's .shipit-run, which the web service mounts: the health check needs nothing in the image.
---@param h shipit.Host
---@param dir string
function override.install_probe(h, dir) end

--- What a deploy or a rollback would change on a host, read without changing anything (deploy --plan, rollback --plan).
---@class shipit.plan
local plan = {}

--- A deploy of commit sha as release target: the release and commit now serving, the commits between (newest first), the env keys the deploy would add, change or remove (never their values), who holds the lock, and whether Traefik routes the stage's domain (routing: what the routed wait would do).
---@param h shipit.Host
---@param opts {target: string, sha: string}
---@return {current: string, current_sha: string, target: string, target_sha: string, commits: string[], commits_err: string, env_added: string[], env_changed: string[], env_removed: string[], locked: string, proxy: boolean, routing: string}
function plan.deploy(h, opts) end

--- A rollback to target (default: previous_release of shipit.lock); raises when there is none.
---@param h shipit.Host
---@param opts {target?: string}
---@return {current: string, current_sha: string, target: string, target_sha: string, commits: string[], commits_err: string, env_added: string[], env_changed: string[], env_removed: string[], locked: string, proxy: boolean, routing: string}
function plan.rollback(h, opts) end

--- Release names (UTC timestamps) and pruning.
---@class shipit.releases
local releases = {}

--- The release name for this second, e.g. 20250219-140000.
---@return string
function releases.now() end

--- The name one second later (for a name already taken).
---@param name string
---@return string
function releases.next(name) end

--- A sorted copy, oldest first.
---@param names string[]
---@return string[]
function releases.sort(names) end

--- The releases to delete: all but the newest `keep`, never one of `protect`.
---@param names string[]
---@param keep integer
---@param protect? string[]
---@return string[]
function releases.prune(names, keep, protect) end

--- Now in RFC 3339 UTC, as shipit.lock writes it.
---@return string
function releases.timestamp() end

--- The names in the host's releases directory, oldest first (none when it is missing); read over SFTP, without a command.
---@param h shipit.Host
---@return string[]
function releases.list(h) end

--- Structured results of a task: what `shipit doctor`, `shipit setup` and `shipit run` show and count.
---@class shipit.report
local report = {}

--- The item is as wanted.
---@param item string
---@param detail? string
function report.ok(item, detail) end

--- The item was changed (detail says how).
---@param item string
---@param detail string
function report.changed(item, detail) end

--- Worth a look, not a failure.
---@param item string
---@param detail string
---@param fix? string
function report.warn(item, detail, fix) end

--- The item is wrong: the task keeps going, and the command fails at the end.
---@param item string
---@param detail string
---@param fix? string
function report.fail(item, detail, fix) end

--- What this host's run has reported so far.
---@return {status: string, item: string, detail: string, fix: string}[]
function report.items() end

--- How many items failed so far on this host.
---@return integer
function report.failed() end

--- Shell quoting: every value that reaches a remote shell goes through it.
---@class shipit.shell
local shell = {}

--- s as one shell word.
---@param s string
---@return string
function shell.quote(s) end

--- The words quoted and joined by spaces.
---@param words string[]
---@return string
function shell.join(words) end

--- Commands whose output is shown live, and interactive terminals.
---@class shipit.stream
local stream = {}

--- Runs cmd, showing each output line as it arrives; returns its exit code, or nil, "interrupted" on Ctrl-C. follow: the command is killed when shipit goes away.
---@param h shipit.Host
---@param cmd string
---@param opts? {follow?: boolean}
---@return integer|nil, string?
function stream.run(h, cmd, opts) end

--- Runs cmd on a remote pseudo-terminal wired to the local terminal; returns its exit code.
---@param h shipit.Host
---@param cmd string
---@return integer
function stream.tty(h, cmd) end

--- Durations: seconds of "1m30s" and back.
---@class shipit.time
local time = {}

--- The seconds of a duration string ("500ms", "1m30s") or a number of seconds; raises on anything else.
---@param d string|number
---@return number
function time.seconds(d) end

--- A duration string, e.g. 90 -> "1m30s".
---@param seconds number
---@return string
function time.duration(seconds) end

--- Zero-downtime routing: wait until Traefik routes to a release, drain one before it stops.
---@class shipit.traefik
local traefik = {}

--- Waits until Traefik sends requests to every routed container of the compose project (asked through Traefik's API, bound inside its container); raises naming what did not happen after timeout (default: the drain timeout of [deploy]).
---@param h shipit.Host
---@param opts {project: string, timeout?: number|string}
function traefik.wait_routed(h, opts) end

--- shipit.lifecycle's drain, also here: takes the project's routed containers out of rotation (the drain marker in dir fails their health check) and waits until Traefik no longer routes to them, at most timeout (default: [deploy] drain_timeout); returns what happened, and whether Traefik no longer routes to them (false: the drain timed out or could not be made).
---@param h shipit.Host
---@param opts {project: string, dir: string, timeout?: number|string}
---@return string, boolean
function traefik.drain(h, opts) end

--- The grace period, in whole seconds, of stopping the project's containers: timeout (default: [deploy] stop_timeout), unless the project was drained and none of its main processes can react to its stop signal (no handler, as busybox httpd or a shell script as PID 1): then the time its longest requests took by Traefik's metrics (at least 1). Returns why when shorter, else "".
---@param h shipit.Host
---@param opts {project: string, drained: boolean, timeout?: number|string}
---@return integer, string
function traefik.stop_grace(h, opts) end

--- Loads a module; shipit's own are listed here.
---@overload fun(name: "shipit.accessory"): shipit.accessory
---@overload fun(name: "shipit.compose"): shipit.compose
---@overload fun(name: "shipit.env"): shipit.env
---@overload fun(name: "shipit.git"): shipit.git
---@overload fun(name: "shipit.health"): shipit.health
---@overload fun(name: "shipit.hostlock"): shipit.hostlock
---@overload fun(name: "shipit.http"): shipit.http
---@overload fun(name: "shipit.images"): shipit.images
---@overload fun(name: "shipit.json"): shipit.json
---@overload fun(name: "shipit.lifecycle"): shipit.lifecycle
---@overload fun(name: "shipit.lockfile"): shipit.lockfile
---@overload fun(name: "shipit.metrics"): shipit.metrics
---@overload fun(name: "shipit.override"): shipit.override
---@overload fun(name: "shipit.plan"): shipit.plan
---@overload fun(name: "shipit.releases"): shipit.releases
---@overload fun(name: "shipit.report"): shipit.report
---@overload fun(name: "shipit.shell"): shipit.shell
---@overload fun(name: "shipit.stream"): shipit.stream
---@overload fun(name: "shipit.time"): shipit.time
---@overload fun(name: "shipit.traefik"): shipit.traefik
---@param name string
---@return any
function require(name) end
