-- The default shipit recipe: the 12 deploy steps, rollback and `releases`.
-- A project's shipit.lua runs after this file and may hook or replace any
-- of these with before/after/on_failure/task.
--
-- Reading order: the deploy pipeline and its contract, the undo of a
-- failed deploy, the 12 steps in order; then rollback the same way; then
-- the helpers they share.

local shell    = require("shipit.shell")
local compose  = require("shipit.compose")
local git      = require("shipit.git")
local images   = require("shipit.images")
local override = require("shipit.override")
local lockfile = require("shipit.lockfile")
local releases = require("shipit.releases")
local hostlock = require("shipit.hostlock")
local env      = require("shipit.env")
local traefik  = require("shipit.traefik")
local lifecycle = require("shipit.lifecycle")
local health   = require("shipit.health")

local q = shell.quote
local D = config.deploy

local OVERRIDE = "docker-compose.override.yml"
local REVISION = ".shipit-revision"
local DEPLOYED_AT = ".shipit-deployed-at"
-- How each release was started (its compose project, then its files): what
-- stops it later, from here or from the host's journal (hostlock).
local COMPOSE_DESC = ".shipit-compose"
local IMAGES = ".shipit-images"

-- Helpers, defined at the end of the file.
local wait_serving, release_dir, project, original, compose_in, compose_cmd, read_lock, current_release, switch_current,
      write_lock, list_releases, describe_release, stop_release, start_release, remove_release

---------------------------------------------------------------------------
-- Deploy
--
-- The contract: what each step hands to the steps after it and to the
-- undo. `sets`: fields the step must set (a step replaced in shipit.lua is
-- checked for them); `marks`: what the step may change on the host,
-- recorded in h.state and in the host's journal before the step's body
-- runs (after its before hooks), so the undo knows what to put back even
-- when the step is replaced, fails, or shipit itself dies (the host then
-- settles the journal on its own).
--
--   h.previous_release  the release serving before this deploy ("" if none)
--   h.state.git_sha      the commit being deployed
--   h.state.images       service -> image, for build = "local" ({} otherwise)
--   h.state.secrets_hash SHA-256 of the stage's secrets file ("" if none)
--   marks: release_created, env_written, started; previous_stopped is the
--   point of no return: from there on an interrupted deploy is completed
--   (previous stopped, current switched, shipit.lock written), not undone.
--   barrier: an atomic rollout (--atomic) holds every host of the batch
--   there until all are healthy and routed; one failure and none switch.
---------------------------------------------------------------------------

task("deploy", {
  { "deploy:release", sets = { "release", "previous_release" }, marks = "release_created" },
  { "deploy:push", sets = { "git_sha" } },
  "deploy:checkout",
  { "deploy:override", sets = { "images" } },
  { "deploy:env", sets = { "secrets_hash" }, marks = "env_written" },
  "deploy:build",
  { "deploy:start", marks = "started" },
  "deploy:health",
  { "deploy:stop_previous", marks = "previous_stopped", barrier = true },
  "deploy:symlink",
  "deploy:lockfile",
  "deploy:cleanup",
}, "Deploy the branch to every host of the stage")

-- A failed or interrupted deploy is settled by the host from its journal:
-- before the point of no return the new release is drained, stopped and
-- removed and the env put back, so the previous release serves as before;
-- after it, the switch is completed. The lock is held until that is done.
on_failure("deploy", function(h, err)
  hostlock.settle(h)
end)

-- Kept as a hook (hooks stay when a step is replaced): whatever writes the
-- env, the journal can put the old one back. A previous release without an
-- env snapshot (one the original shipit deployed) gets the env it runs
-- with, so a rollback to it restores that env.
before("deploy:env", function(h)
  env.backup(h)
  local prev = h.previous_release
  if prev ~= "" and h:exists(release_dir(h, prev)) and not h:exists(release_dir(h, prev) .. "/.env.snapshot") then
    env.snapshot(h, prev)
  end
end)

task("deploy:release", function(h)
  compose.prefetch(h) -- while the host starts the lock's holder
  hostlock.acquire(h, "deploy")
  -- Waits for the prefetch, so the commands below find the warm shell free.
  local compose_cmd = compose.command(h)
  h.previous_release = current_release(h)
  -- One command: the app's directories, then the release's. mkdir without
  -- -p fails when the name exists: a second deploy in the same second gets
  -- the next free name instead of clobbering a release.
  local dirs = "mkdir -p " .. q(h.releases_path) .. " && mkdir -p -m 700 " .. q(h.shared_path) ..
               " && chmod 700 " .. q(h.shared_path) .. " && "
  for _ = 1, 60 do
    local r = h:run(dirs .. shell.join({ "mkdir", h.release_path }), { check = false })
    if r.code == 0 then
      hostlock.begin(h, { op = "deploy", compose = compose_cmd })
      return
    end
    if not h:exists(h.release_path) then
      fail("cannot create " .. h.release_path .. ": " .. r.stderr)
    end
    h.release = releases.next(h.release)
  end
  fail("no free release name after 60 tries")
end, "Create the release directory")

task("deploy:push", function(h)
  -- The branch and uncommitted changes are checked once, before any host
  -- is contacted (shipit deploy and deploy --plan say what is deployed).
  local r = git.push(h, { branch = config.app.branch, repo = h.app_path .. "/repo" })
  h.state.git_sha = r.sha
  if r.skipped then
    log.info("repo already at %s", r.sha:sub(1, 12))
  else
    log.info("pushed %s (%d bytes%s)", r.sha:sub(1, 12), r.bytes, r.incremental and ", incremental" or "")
  end
end, "Push the branch to the bare repo on the host")

task("deploy:checkout", function(h)
  h:run(shell.join({ "git", "--work-tree=" .. h.release_path, "--git-dir=" .. h.app_path .. "/repo",
                     "checkout", "-f", h.state.git_sha, "--", "." }))
  h:put(h.release_path .. "/" .. REVISION, h.state.git_sha .. "\n", "0644")
end, "Check the code out into the release")

task("deploy:override", function(h)
  local imgs = {}
  if D.build == "local" then
    imgs = images.plan_local(h, { compose_file = D.compose_file, commit = h.state.git_sha })
  end
  h.state.images = imgs
  local base = h.release_path .. "/" .. D.compose_file
  if not h:exists(base) then
    fail(D.compose_file .. " is not in commit " .. h.state.git_sha:sub(1, 12) ..
      ": shipit.toml and the compose file must be at the root of the git repository, and committed")
  end
  -- The health check is in [deploy.health_check] (shipit.health): the
  -- override runs shipit's probe, linked into the release by describe_release.
  local yml, notes = override.generate({
    app = h.app, stage = h.stage, release = h.release, web_service = D.web_service,
    compose_v1 = compose.flavor(h) == "v1",
    domain = config.stages[h.stage].traefik.domain,
    tls = config.stages[h.stage].traefik.tls,
    env_file = ".env", images = imgs,
    base = h:read(base),
  })
  for _, note in ipairs(notes) do log.warn("%s", note) end
  h:put(h.release_path .. "/" .. OVERRIDE, yml, "0644")
  describe_release(h, h.release, imgs)
end, "Generate docker-compose.override.yml")

task("deploy:env", function(h)
  -- shipit.toml env < `shipit config` < secrets, written to shared/.env
  -- (0600) only when a source changed; each release keeps a snapshot.
  local r = env.sync(h)
  h.state.secrets_hash = r.secrets_hash
  if r.written then
    log.info("env written (%d keys)", r.keys)
  else
    log.info("env unchanged, not rewritten")
  end
  env.snapshot(h, nil, { link = true })
end, "Write the merged env to shared/.env and link it into the release")

task("deploy:build", function(h)
  if D.build == "local" then
    images.build_local(h, { compose_file = D.compose_file, commit = h.state.git_sha })
    local r = images.transfer(h, h.state.images)
    log.info("images: %d sent, %d already on host (layers: %d sent, %d staged earlier, %d on host; %d bytes)",
      #r.sent, #r.skipped, r.layers_sent, r.layers_reused, r.layers_skipped, r.bytes)
  else
    compose_in(h, h.release, "build")
  end
end, "Build images on the host, or build locally and transfer them")

task("deploy:start", function(h)
  h:run("{ " .. override.ensure_network_cmd .. "; } && " .. compose_cmd(h, h.release, "up -d --no-build --remove-orphans"))
end, "Start the new release next to the running one")

task("deploy:health", function(h)
  wait_serving(h, h.release)
end, "Wait until the web service is healthy and Traefik routes to it")

task("deploy:stop_previous", function(h)
  local prev = h.previous_release
  if prev == "" or prev == h.release then return end
  stop_release(h, prev)
end, "Drain the previous release out of Traefik, then stop it (grace period for in-flight requests)")

task("deploy:symlink", function(h)
  switch_current(h, h.release)
end, "Point current at the new release (atomic rename)")

task("deploy:lockfile", function(h)
  write_lock(h, h.release, h.previous_release, h.state.git_sha, true)
end, "Write shipit.lock")

task("deploy:cleanup", function(h)
  local doomed = releases.prune(list_releases(h), D.keep_releases, { h.release, h.previous_release })
  for _, name in ipairs(doomed) do
    remove_release(h, name)
    log.info("removed release %s", name)
  end
end, "Remove releases beyond keep_releases")

---------------------------------------------------------------------------
-- Rollback: start the target next to current, health-check, then switch.
--
--   h.release            the target (--release, or the lock's previous)
--   h.previous_release   the release that was current
--   h.state.git_sha, secrets_hash   what the target was deployed with
--   marks: rb_started; rb_stopping is the point of no return.
---------------------------------------------------------------------------

task("rollback", {
  { "rollback:prepare", sets = { "previous_release", "git_sha", "secrets_hash" } },
  { "rollback:start", marks = "rb_started" },
  "rollback:health",
  { "rollback:stop_current", marks = "rb_stopping" },
  "rollback:symlink",
  "rollback:lockfile",
}, "Switch back to the previous (or a named) release")

-- A failed or interrupted rollback is settled by the host from its
-- journal: the release that was current keeps serving with its env, or,
-- past the point of no return, the switch is completed.
on_failure("rollback", function(h, err)
  hostlock.settle(h)
end)

before("rollback:start", function(h) env.backup(h) end)

task("rollback:prepare", function(h)
  compose.prefetch(h) -- while the host starts the lock's holder
  hostlock.acquire(h, "rollback")
  local l = read_lock(h)
  if not l then fail("no shipit.lock on this host: nothing to roll back") end
  h.previous_release = l.current_release
  if h.release == "" then h.release = l.previous_release end
  if h.release == "" then fail("shipit.lock names no previous release; pass --release NAME (see `shipit releases`)") end
  if h.release == l.current_release then fail("release " .. h.release .. " is already current") end
  if not h:exists(h.release_path .. "/docker-compose.override.yml") then
    fail("release " .. h.release .. " is not on this host (see `shipit releases`)")
  end
  h.state.git_sha = h:exists(h.release_path .. "/" .. REVISION)
    and h:read(h.release_path .. "/" .. REVISION):gsub("%s+$", "") or ""
  h.state.secrets_hash = ""
  local sources = h.release_path .. "/.env.sources"
  if h:exists(sources) then
    h.state.secrets_hash = h:read(sources):match("age:(%x*)") or ""
  end
  hostlock.begin(h, { op = "rollback", compose = compose.command(h) })
end, "Find the rollback target")

task("rollback:start", function(h)
  if h:exists(h.release_path .. "/.env.snapshot") then
    -- Old code runs with the env it was deployed with, never with new settings.
    env.restore(h, h.release)
  end
  start_release(h, h.release)
end, "Start the target release")

task("rollback:health", function(h)
  wait_serving(h, h.release)
end, "Wait until the target is healthy and Traefik routes to it")

task("rollback:stop_current", function(h)
  if h.previous_release ~= "" then stop_release(h, h.previous_release) end
end, "Drain the release that was current, then stop it")

task("rollback:symlink", function(h)
  switch_current(h, h.release)
end, "Point current at the target")

task("rollback:lockfile", function(h)
  write_lock(h, h.release, h.previous_release, h.state.git_sha)
end, "Write shipit.lock")

---------------------------------------------------------------------------
-- Inspection
---------------------------------------------------------------------------

task("releases", function(h)
  local l = read_lock(h) or {}
  local names = list_releases(h)
  if #names == 0 then print("no releases") return end
  for _, name in ipairs(names) do
    local dir = release_dir(h, name)
    local meta = h:run("cat " .. q(dir .. "/" .. REVISION) .. " 2>/dev/null; echo; cat " ..
      q(dir .. "/" .. DEPLOYED_AT) .. " 2>/dev/null || true", { quiet = true })
    local sha, at = meta:match("^(%x*)%s*\n%s*(%S*)")
    local mark = "  "
    if name == l.current_release then mark = "* " elseif name == l.previous_release then mark = "< " end
    if (not sha or sha == "") and name == l.current_release then sha = l.git_sha end
    local state = (at and at ~= "") and ("deployed " .. at) or "(not completed)"
    if original(h, name) and h:exists(dir .. "/" .. OVERRIDE) then state = "deployed by the original shipit" end
    print(string.format("%s%s  %s  %s", mark, name, (sha and sha ~= "") and sha:sub(1, 12) or "(no sha)     ", state))
  end
end, "List releases (* current, < rollback target)")

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- wait_serving waits until the release's web service is healthy (timeout,
-- interval: [deploy.health_check]) and Traefik routes to it (at most
-- drain_timeout): healthy is not enough, the release that serves now stops
-- only once Traefik sends requests to this one.
function wait_serving(h, release)
  compose.wait_healthy(h, { project = project(h, release), service = D.web_service })
  traefik.wait_routed(h, { project = project(h, release) })
end

function release_dir(h, release)
  return h.releases_path .. "/" .. release
end

-- Each release is its own compose project so old and new run side by
-- side: <app>-<release>, as recorded in the release's .shipit-compose. A
-- release the original shipit deployed has none: compose ran in its
-- directory, so its project is the directory's name and compose finds its
-- files (docker-compose.yml and the override) itself (compose.release).
function project(h, release)
  return compose.release(h, release).project
end

-- original reports whether the original shipit deployed the release.
function original(h, release)
  return compose.release(h, release).original
end

-- describe_release records how the release is started: its compose
-- project, then its files one a line (a name may hold spaces or globs),
-- and the images built locally for it.
function describe_release(h, release, imgs)
  local dir = release_dir(h, release)
  override.install_probe(h, dir)
  h:put(dir .. "/" .. COMPOSE_DESC, project(h, release) .. "\n" .. D.compose_file .. "\n" .. OVERRIDE .. "\n", "0644")
  local refs = {}
  for _, ref in pairs(imgs or {}) do table.insert(refs, ref) end
  table.sort(refs)
  if #refs > 0 then h:put(dir .. "/" .. IMAGES, table.concat(refs, "\n") .. "\n", "0644") end
end

-- compose_in runs `<compose> -p <project> -f <file> -f <override> ARGS` in
-- the release's directory (plain `<compose> ARGS` for the original's).
function compose_in(h, release, args, opts)
  return h:run(compose_cmd(h, release, args), opts)
end

function compose_cmd(h, release, args)
  local r = compose.release(h, release)
  return "cd " .. q(r.dir) .. " && " .. compose.command(h) .. " " .. r.args .. " " .. args
end

-- stop_release drains a release out of Traefik's rotation, stops it with
-- the grace period for in-flight requests, and removes its containers: on
-- the host, in one command (shipit.lifecycle), the very steps the host's
-- lock holder takes when it settles a run without shipit. The grace period
-- is stop_timeout, unless the drained release cannot react to its stop
-- signal (traefik.stop_grace, docs/deploys.md): then waiting stop_timeout
-- would only hold the deploy, and its in-flight requests get the time its
-- longest requests take.
function stop_release(h, release, down_args)
  local dir = release_dir(h, release)
  if not h:exists(dir .. "/" .. OVERRIDE) then return end
  local p = project(h, release)
  local grace, why = traefik.stop_grace(h, { project = p, drained = true, timeout = health.settings().stop_timeout })
  if why ~= "" then log.info("%s: once drained, %s", p, why) end
  lifecycle.stop(h, { project = p, dir = dir, grace = grace, down_args = down_args })
end

-- remove_release removes a release beyond keep_releases: its containers
-- and images, exactly the images built locally for it (another app's must
-- never match), its directory. One command when it no longer runs (the
-- usual case: only current runs); one still running is drained and stopped
-- first.
function remove_release(h, name)
  local dir = release_dir(h, name)
  local script = "{ [ ! -e " .. q(dir .. "/" .. OVERRIDE) .. " ] || (" .. compose_cmd(h, name, "down --remove-orphans --rmi local") ..
    "); } && { [ ! -e " .. q(dir .. "/" .. IMAGES) .. " ] || xargs -r docker image rm -f < " .. q(dir .. "/" .. IMAGES) ..
    " >/dev/null 2>&1; true; } && rm -rf " .. q(dir)
  local running = "[ -z \"$(docker ps -q --filter " .. q("label=com.docker.compose.project=" .. project(h, name)) .. ")\" ] || exit 3; "
  local r = h:run(running .. script, { check = false })
  if r.code == 3 then
    stop_release(h, name, "--rmi local")
    r = h:run(script, { check = false })
  end
  if r.code ~= 0 then fail("removing release " .. name .. ": " .. r.stderr) end
end

-- start_release starts a release that ran before (rollback) in one
-- command: the traefik network, its drain marker removed, compose up.
function start_release(h, release)
  local cmd = "{ " .. override.ensure_network_cmd .. "; } && "
  if not original(h, release) then
    local marker = lifecycle.drain_marker(release_dir(h, release))
    cmd = cmd .. "mkdir -p " .. q(marker:match("^(.*)/[^/]*$")) .. " && rm -f " .. q(marker) .. " && "
  end
  h:run(cmd .. compose_cmd(h, release, "up -d --no-build --remove-orphans"))
end

function read_lock(h)
  local path = h.app_path .. "/shipit.lock"
  if not h:exists(path) then return nil end
  return lockfile.decode(h:read(path))
end

-- The release `current` points at, from the lock or else the symlink.
function current_release(h)
  local l = read_lock(h)
  if l and l.current_release ~= "" then return l.current_release end
  local r = h:run({ "readlink", h.app_path .. "/current" }, { check = false, quiet = true })
  if r.code == 0 then return (r.stdout:gsub("%s+$", ""):match("([^/]+)$")) or "" end
  return ""
end

function switch_current(h, release)
  lifecycle.switch(h, release)
end

function write_lock(h, current, previous, sha, stamp)
  local old = read_lock(h) or {}
  lifecycle.write_lock(h, {
    current_release = current,
    previous_release = previous or "",
    git_sha = sha or "",
    secrets_hash = h.state.secrets_hash or old.secrets_hash or "",
    stamp = stamp,
  })
end

function list_releases(h)
  return releases.list(h)
end

---------------------------------------------------------------------------
-- Plans: what `deploy --plan` and `rollback --plan` show of each host, as
-- report items ("release", "commit", "images", "env", "routing", "lock"),
-- changing nothing. A shipit.lua adds lines of its own by hooking them:
--   after("deploy:plan", function(h) report.warn("migrations", "2 pending") end)
---------------------------------------------------------------------------

local report = require("shipit.report")
local plan   = require("shipit.plan")

local function or_none(s) return (s and s ~= "") and s or "(none)" end

local function keys_line(p)
  local parts = {}
  for _, k in ipairs({ "added", "changed", "removed" }) do
    local keys = p["env_" .. k]
    if #keys > 0 then table.insert(parts, k .. " " .. table.concat(keys, ", ") .. ";") end
  end
  return #parts > 0 and table.concat(parts, " ") or "unchanged"
end

local function show_plan(p, with_images)
  report.ok("release", or_none(p.current) .. " -> " .. p.target)
  local commit = or_none(p.current_sha:sub(1, 12)) .. " -> " .. or_none(p.target_sha:sub(1, 12))
  if p.commits_err ~= "" then commit = commit .. "\n(" .. p.commits_err .. ")" end
  for _, c in ipairs(p.commits) do commit = commit .. "\n" .. c end
  report.ok("commit", commit)
  if with_images then
    report.ok("images", D.build == "local" and "built here, then only the layers the host lacks are sent"
      or "built on the host (docker compose build)")
  end
  report.ok("env", keys_line(p))
  report.ok("routing", p.routing)
  if p.locked ~= "" then report.warn("lock", "held now: " .. p.locked) end
end

task("deploy:plan", function(h)
  show_plan(plan.deploy(h, { target = params.release, sha = params.sha }), true)
end, "What `deploy --plan` shows of a host (changes nothing)")

task("rollback:plan", function(h)
  show_plan(plan.rollback(h, { target = params.release }), false)
end, "What `rollback --plan` shows of a host (changes nothing)")
