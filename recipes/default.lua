-- The default shipit recipe: the 12 deploy steps, rollback, and built-in
-- tasks. A project's shipit.lua runs after this file and may hook or
-- replace any of these with before/after/on_failure/task.
local shell    = require("shipit.shell")
local compose  = require("shipit.compose")
local git      = require("shipit.git")
local images   = require("shipit.images")
local override = require("shipit.override")
local lockfile = require("shipit.lock")
local releases = require("shipit.releases")
local deploylock = require("shipit.deploylock")
local env      = require("shipit.env")

local q = shell.quote
local D = config.deploy
local HC = D.health_check

local OVERRIDE = "docker-compose.override.yml"
local REVISION = ".shipit-revision"
local DEPLOYED_AT = ".shipit-deployed-at"

-- Each release is its own compose project so old and new run side by side.
local function project(h, release)
  return h.app .. "-" .. release
end

local function release_dir(h, release)
  return h.releases_path .. "/" .. release
end

-- compose_in runs `<compose> -p <project> -f <file> -f <override> ARGS` in
-- the release's directory.
local function compose_in(h, release, args, opts)
  local cmd = "cd " .. q(release_dir(h, release)) .. " && " .. compose.command(h) .. " " ..
    shell.join({ "-p", project(h, release), "-f", D.compose_file, "-f", OVERRIDE }) .. " " .. args
  return h:run(cmd, opts)
end

local function read_lock(h)
  local path = h.app_path .. "/shipit.lock"
  if not h:exists(path) then return nil end
  return lockfile.decode(h:read(path))
end

-- The release `current` points at, from the lock or else the symlink.
local function current_release(h)
  local l = read_lock(h)
  if l and l.current_release ~= "" then return l.current_release end
  local r = h:run({ "readlink", h.app_path .. "/current" }, { check = false, quiet = true })
  if r.code == 0 then return (r.stdout:gsub("%s+$", ""):match("([^/]+)$")) or "" end
  return ""
end

local function switch_current(h, release)
  local tmp = h.app_path .. "/.current-" .. release
  h:run(shell.join({ "ln", "-sfn", "releases/" .. release, tmp }) .. " && " ..
        shell.join({ "mv", "-Tf", tmp, h.app_path .. "/current" }))
end

local function write_lock(h, current, previous, sha)
  local old = read_lock(h) or {}
  h:put(h.app_path .. "/shipit.lock", lockfile.encode({
    current_release = current,
    previous_release = previous or "",
    git_sha = sha or "",
    secrets_hash = h.vars.secrets_hash or old.secrets_hash or "",
    deployed_at = releases.timestamp(),
  }), "0644")
end

local function health_opts(h, release)
  return { project = project(h, release), service = D.web_service,
           interval = HC.interval, timeout = HC.timeout, retries = HC.retries }
end

local function list_releases(h)
  local out = h:run("ls -1 " .. q(h.releases_path) .. " 2>/dev/null || true", { quiet = true })
  local names = {}
  for name in out:gmatch("[^\n]+") do table.insert(names, name) end
  return releases.sort(names)
end

---------------------------------------------------------------------------
-- Deploy
---------------------------------------------------------------------------

task("deploy:release", function(h)
  deploylock.acquire(h, "deploy")
  h:run({ "mkdir", "-p", h.releases_path, h.shared_path })
  h.previous_release = current_release(h)
  -- mkdir without -p fails when the name exists: a second deploy in the
  -- same second gets the next free name instead of clobbering a release.
  for _ = 1, 60 do
    local r = h:run({ "mkdir", h.release_path }, { check = false })
    if r.code == 0 then
      h.vars.release_created = true
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
  local dirty = run_local("git status --porcelain --untracked-files=no", { check = false })
  if dirty.code == 0 and dirty.stdout ~= "" then
    log.warn("uncommitted changes are not deployed: shipit deploys the committed HEAD of %s", config.app.branch)
  end
  local r = git.push(h, { branch = config.app.branch, repo = h.app_path .. "/repo" })
  h.vars.git_sha = r.sha
  if r.skipped then
    log.info("repo already at %s", r.sha:sub(1, 12))
  else
    log.info("pushed %s (%d bytes%s)", r.sha:sub(1, 12), r.bytes, r.incremental and ", incremental" or "")
  end
end, "Push the branch to the bare repo on the host")

task("deploy:checkout", function(h)
  h:run(shell.join({ "git", "--work-tree=" .. h.release_path, "--git-dir=" .. h.app_path .. "/repo",
                     "checkout", "-f", h.vars.git_sha, "--", "." }))
  h:put(h.release_path .. "/" .. REVISION, h.vars.git_sha .. "\n", "0644")
end, "Check the code out into the release")

task("deploy:override", function(h)
  local imgs = {}
  if D.build == "local" then
    imgs = images.plan_local(h, { compose_file = D.compose_file, commit = h.vars.git_sha })
  end
  h.vars.images = imgs
  local base = h.release_path .. "/" .. D.compose_file
  if not h:exists(base) then
    fail(D.compose_file .. " is not in commit " .. h.vars.git_sha:sub(1, 12) ..
      ": shipit.toml and the compose file must be at the root of the git repository, and committed")
  end
  local yml = override.generate({
    app = h.app, stage = h.stage, release = h.release, web_service = D.web_service,
    compose_v1 = compose.flavor(h) == "v1",
    domain = config.stages[h.stage].traefik.domain,
    tls = config.stages[h.stage].traefik.tls,
    port = HC.port, path = HC.path, health_cmd = HC.cmd,
    interval = HC.interval, timeout = HC.timeout, retries = HC.retries,
    env_file = ".env", images = imgs,
    base = h:read(base),
  })
  h:put(h.release_path .. "/" .. OVERRIDE, yml, "0644")
end, "Generate docker-compose.override.yml")

task("deploy:env", function(h)
  -- shipit.toml env < `shipit config` < secrets, written to shared/.env
  -- (0600) only when a source changed; each release keeps a snapshot.
  local r = env.sync(h)
  h.vars.secrets_hash = r.secrets_hash
  if r.written then
    h.vars.env_written = true
    log.info("env written (%d keys)", r.keys)
  else
    log.info("env unchanged, not rewritten")
  end
  h:run({ "ln", "-sfn", "../../shared/.env", h.release_path .. "/.env" })
  env.snapshot(h)
end, "Write the merged env to shared/.env and link it into the release")

task("deploy:build", function(h)
  if D.build == "local" then
    images.build_local(h, { compose_file = D.compose_file, commit = h.vars.git_sha })
    local r = images.transfer(h, h.vars.images)
    log.info("images: %d sent, %d already on host (layers: %d sent, %d staged earlier, %d on host; %d bytes)",
      #r.sent, #r.skipped, r.layers_sent, r.layers_reused, r.layers_skipped, r.bytes)
  else
    compose_in(h, h.release, "build")
  end
end, "Build images on the host, or build locally and transfer them")

task("deploy:start", function(h)
  h:run(override.ensure_network_cmd)
  h.vars.started = true
  compose_in(h, h.release, "up -d --no-build --remove-orphans")
end, "Start the new release next to the running one")

task("deploy:health", function(h)
  compose.wait_healthy(h, health_opts(h, h.release))
end, "Wait until the web service is healthy")

task("deploy:stop_previous", function(h)
  local prev = h.previous_release
  if prev == "" or prev == h.release or not h:exists(release_dir(h, prev) .. "/" .. OVERRIDE) then return end
  h.vars.previous_stopped = true
  compose_in(h, prev, "down --remove-orphans")
end, "Stop the previous release (only after the new one is healthy)")

task("deploy:symlink", function(h)
  h.vars.switched = true
  switch_current(h, h.release)
end, "Point current at the new release (atomic rename)")

task("deploy:lockfile", function(h)
  h:put(h.release_path .. "/" .. DEPLOYED_AT, releases.timestamp() .. "\n", "0644")
  write_lock(h, h.release, h.previous_release, h.vars.git_sha)
  h.vars.locked = true
end, "Write shipit.lock")

task("deploy:cleanup", function(h)
  local doomed = releases.prune(list_releases(h), D.keep_releases, { h.release, h.previous_release })
  for _, name in ipairs(doomed) do
    local dir = release_dir(h, name)
    if h:exists(dir .. "/" .. OVERRIDE) then
      compose_in(h, name, "down --rmi local --remove-orphans", { check = false })
    end
    h:run("docker image ls -q --filter " .. q("reference=" .. h.app .. "-*:" .. name) ..
          " | xargs -r docker image rm -f >/dev/null 2>&1; true", { quiet = true })
    h:run({ "rm", "-rf", dir })
    log.info("removed release %s", name)
  end
end, "Remove releases beyond keep_releases")

task("deploy", {
  "deploy:release", "deploy:push", "deploy:checkout", "deploy:override",
  "deploy:env", "deploy:build", "deploy:start", "deploy:health",
  "deploy:stop_previous", "deploy:symlink", "deploy:lockfile", "deploy:cleanup",
}, "Deploy the branch to every host of the stage")

-- Undo a failed deploy so the host is exactly as before: the previous
-- release running, current and shipit.lock untouched.
on_failure(function(h, err)
  local v = h.vars
  if not v.release_created or v.locked then return end
  local prev = h.previous_release
  -- Each action is tried on its own: one failing must not skip the rest.
  local function try(f)
    local ok, e = pcall(f)
    if not ok then log.warn("clean-up: %s", tostring(e)) end
  end
  if v.switched then
    try(function()
      if prev ~= "" then switch_current(h, prev) else h:run({ "rm", "-f", h.app_path .. "/current" }) end
    end)
  end
  if v.env_written and prev ~= "" then
    -- The previous release keeps the env it was deployed with.
    try(function()
      if h:exists(release_dir(h, prev) .. "/.env.snapshot") then
        env.restore(h, prev)
        h:run({ "rm", "-f", h.shared_path .. "/.env.before-rollback", h.shared_path .. "/.env.sources.before-rollback" })
      end
    end)
  end
  if v.previous_stopped then
    try(function() compose_in(h, prev, "up -d --no-build", { check = false }) end)
  end
  if v.started then
    try(function() compose_in(h, h.release, "down --rmi local --remove-orphans", { check = false }) end)
  end
  try(function() h:run({ "rm", "-rf", h.release_path }, { check = false }) end)
  log.warn("rolled back: release %s removed%s", h.release, prev ~= "" and (", " .. prev .. " still serving") or "")
end)

---------------------------------------------------------------------------
-- Rollback: start the target next to current, health-check, then switch.
---------------------------------------------------------------------------

task("rollback:prepare", function(h)
  deploylock.acquire(h, "rollback")
  local l = read_lock(h)
  if not l then fail("no shipit.lock on this host: nothing to roll back") end
  h.previous_release = l.current_release
  if h.release == "" then h.release = l.previous_release end
  if h.release == "" then fail("shipit.lock names no previous release; pass --release NAME (see `shipit releases`)") end
  if h.release == l.current_release then fail("release " .. h.release .. " is already current") end
  if not h:exists(h.release_path .. "/" .. OVERRIDE) then
    fail("release " .. h.release .. " is not on this host (see `shipit releases`)")
  end
  h.vars.git_sha = h:exists(h.release_path .. "/" .. REVISION)
    and h:read(h.release_path .. "/" .. REVISION):gsub("%s+$", "") or ""
  local sources = h.release_path .. "/.env.sources"
  if h:exists(sources) then
    h.vars.secrets_hash = h:read(sources):match("age:(%x*)") or ""
  end
end, "Find the rollback target")

task("rollback:start", function(h)
  h:run(override.ensure_network_cmd)
  if h:exists(h.release_path .. "/.env.snapshot") then
    -- Old code runs with the env it was deployed with, never with new settings.
    env.restore(h, h.release)
    h.vars.rb_env_restored = true
  end
  h.vars.rb_started = true
  compose_in(h, h.release, "up -d --no-build --remove-orphans")
end, "Start the target release")

task("rollback:health", function(h)
  compose.wait_healthy(h, health_opts(h, h.release))
end, "Wait until the target is healthy")

task("rollback:stop_current", function(h)
  local cur = h.previous_release
  if cur ~= "" and h:exists(release_dir(h, cur) .. "/" .. OVERRIDE) then
    compose_in(h, cur, "down --remove-orphans")
  end
end, "Stop the release that was current")

task("rollback:symlink", function(h)
  switch_current(h, h.release)
end, "Point current at the target")

task("rollback:lockfile", function(h)
  write_lock(h, h.release, h.previous_release, h.vars.git_sha)
  h.vars.rb_locked = true
  h:run({ "rm", "-f", h.shared_path .. "/.env.before-rollback", h.shared_path .. "/.env.sources.before-rollback" })
end, "Write shipit.lock")

task("rollback", { "rollback:prepare", "rollback:start", "rollback:health",
                   "rollback:stop_current", "rollback:symlink", "rollback:lockfile" },
  "Switch back to the previous (or a named) release")

on_failure(function(h, err)
  local v = h.vars
  if v.rb_env_restored and not v.rb_locked then env.undo_restore(h) end
  if v.rb_started and not v.rb_locked then
    compose_in(h, h.release, "down --remove-orphans", { check = false })
    local cur = h.previous_release
    if cur ~= "" then compose_in(h, cur, "up -d --no-build", { check = false }) end
    log.warn("rollback failed: %s still current", cur)
  end
end)

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
    print(string.format("%s%s  %s  %s", mark, name, (sha and sha ~= "") and sha:sub(1, 12) or "(no sha)     ",
      (at and at ~= "") and ("deployed " .. at) or "(not completed)"))
  end
end, "List releases (* current, < rollback target)")
