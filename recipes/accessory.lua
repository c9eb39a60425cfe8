-- Accessories: long-lived containers (databases, caches) beside the app,
-- outside the release cycle. `shipit accessory ACTION [NAME]` runs the task
-- accessory:ACTION once per accessory on the hosts it lives on, with
-- params.accessory set; hook them like any task:
--   after("accessory:boot", function(h) if params.accessory == "db" then ... end end)
local shell     = require("shipit.shell")
local override  = require("shipit.override")
local accessory = require("shipit.accessory")

local q = shell.quote

local function current_spec()
  local name = params.accessory
  if not name or name == "" then fail("no accessory given (params.accessory)") end
  return accessory.spec(name)
end

local function say(s, fmt, ...)
  print(s.name .. ": " .. string.format(fmt, ...))
end

-- inspect returns the container, refusing one shipit did not create.
local function inspect(h, s)
  local cur = accessory.inspect(h, s.container)
  if cur and not cur.managed then
    fail("a container named " .. s.container .. " exists but was not created by shipit (no shipit.accessory label): " ..
      "remove or rename it, or rename the accessory")
  end
  return cur
end

local function booted(h, s)
  local cur = inspect(h, s)
  if not cur then fail(s.name .. " is not booted on this host: run `shipit accessory boot " .. s.name .. "`") end
  return cur
end

-- Pull before anything is stopped, so a slow or failing pull never leaves
-- the accessory down.
local function ensure_image(h, s)
  h:run("docker image inspect " .. q(s.image) .. " >/dev/null 2>&1 || docker pull " .. q(s.image))
end

-- start runs the container and checks it stays up; on failure it shows the
-- container's last log lines.
local function start(h, s)
  for _, cmd in ipairs(s.volume_create) do h:run(cmd) end
  local r = h:run(s.run, { stdin = s.env_file, check = false })
  if r.code ~= 0 then
    return false, "docker run failed (exit " .. r.code .. "): " .. r.stderr:gsub("%s+$", "")
  end
  -- A command that exits at once would be restarted forever (restart
  -- always): give it a second and count restarts.
  h:run("sleep 1", { quiet = true })
  local cur = accessory.inspect(h, s.container)
  if not cur or cur.status ~= "running" or cur.restart_count > 0 then
    local logs = h:run("docker logs --tail 20 " .. q(s.container) .. " 2>&1", { check = false, quiet = true })
    return false, s.container .. " is not running (" .. (cur and cur.status or "gone") .. "); last log lines:\n" ..
      logs.stdout:gsub("%s+$", "")
  end
  return true
end

task("accessory:boot", function(h)
  local s = current_spec()
  h:run(override.ensure_network_cmd)
  local cur = inspect(h, s)
  if cur and cur.hash == s.hash then
    if cur.running then
      say(s, "up to date, nothing to do")
    else
      h:run({ "docker", "start", s.container })
      say(s, "started (was %s; config unchanged)", cur.status)
    end
    return
  end
  ensure_image(h, s)
  if not cur then
    local ok, err = start(h, s)
    if not ok then
      h:run({ "docker", "rm", "-f", s.container }, { check = false, quiet = true })
      fail(err)
    end
    say(s, "booted %s as %s", s.image, s.container)
    return
  end
  say(s, "config changed: %s", table.concat(accessory.diff(s.name, cur.config), "; "))
  -- Keep the old container aside until the new one runs, and put it back
  -- if the new one does not start.
  local old = s.container .. "-shipit-old"
  h:run({ "docker", "rm", "-f", old }, { check = false, quiet = true })
  h:run({ "docker", "stop", s.container })
  h:run({ "docker", "rename", s.container, old })
  local ok, err = start(h, s)
  if not ok then
    h:run({ "docker", "rm", "-f", s.container }, { check = false })
    h:run({ "docker", "rename", old, s.container })
    if cur.running then h:run({ "docker", "start", s.container }, { check = false }) end
    fail(err .. "\nthe previous container was put back")
  end
  h:run({ "docker", "rm", old })
  say(s, "recreated %s", s.container)
end, "Boot an accessory (idempotent: recreates it only when its config changed)")

task("accessory:stop", function(h)
  local s = current_spec()
  local cur = inspect(h, s)
  if not cur then say(s, "not booted, nothing to stop") return end
  if not cur.running then say(s, "already stopped (%s)", cur.status) return end
  h:run({ "docker", "stop", s.container })
  say(s, "stopped (container kept; `shipit accessory boot %s` starts it)", s.name)
end, "Stop an accessory's container (kept, with its volumes)")

task("accessory:restart", function(h)
  local s = current_spec()
  local cur = booted(h, s)
  h:run({ "docker", "restart", s.container })
  say(s, "restarted")
  if cur.hash ~= s.hash then
    log.warn("%s: shipit.toml changed since it was booted; `shipit accessory boot %s` applies it", s.name, s.name)
  end
end, "Restart an accessory's container")

task("accessory:logs", function(h)
  local s = current_spec()
  booted(h, s)
  accessory.logs(h, {
    container = s.container, tail = params.tail, since = params.since,
    follow = params.follow == "true",
    prefix = params.multi == "true" and (s.name .. " | ") or "",
  })
end, "Show an accessory's logs")

task("accessory:details", function(h)
  local s = current_spec()
  local cur = inspect(h, s)
  if not cur then say(s, "not booted (container %s does not exist)", s.container) return end
  local state = cur.status
  if cur.running then
    state = state .. " since " .. cur.started_at
  elseif cur.finished_at ~= "" and cur.finished_at:sub(1, 4) ~= "0001" then
    state = state .. " (exit " .. cur.exit_code .. " at " .. cur.finished_at .. ")"
  end
  local function list(t) return #t > 0 and table.concat(t, ", ") or "-" end
  say(s, "%s", s.container)
  print("  state     " .. state)
  print("  image     " .. cur.image)
  print("  ports     " .. list(cur.ports))
  print("  volumes   " .. list(cur.mounts))
  print("  network   " .. list(cur.networks) .. ", restart " .. cur.restart)
  print("  config    " .. (cur.hash == s.hash and "up to date" or
    ("differs from shipit.toml (" .. table.concat(accessory.diff(s.name, cur.config), "; ") .. "): run boot")))
end, "Show an accessory's state, image, ports and volumes")

task("accessory:remove", function(h)
  local s = current_spec()
  local cur = inspect(h, s)
  if cur then
    h:run({ "docker", "rm", "-f", s.container })
    say(s, "removed container %s", s.container)
  else
    say(s, "no container to remove")
  end
  -- Named volumes from the config, and any left labelled for this
  -- accessory (a volume since dropped from shipit.toml).
  local vols, seen = {}, {}
  for _, v in ipairs(s.named_volumes) do
    if not seen[v] then table.insert(vols, v) seen[v] = true end
  end
  local out = h:run(shell.join({ "docker", "volume", "ls", "-q",
    "--filter", "label=shipit.app=" .. h.app, "--filter", "label=shipit.accessory=" .. s.name }), { quiet = true })
  for v in out:gmatch("[^\n]+") do
    if not seen[v] then table.insert(vols, v) seen[v] = true end
  end
  local present = {}
  for _, v in ipairs(vols) do
    if h:run({ "docker", "volume", "inspect", v }, { check = false, quiet = true }).code == 0 then
      table.insert(present, v)
    end
  end
  if #present == 0 then return end
  if params.volumes == "true" then
    for _, v in ipairs(present) do
      h:run({ "docker", "volume", "rm", v })
      say(s, "removed volume %s", v)
    end
  else
    say(s, "kept volume%s %s (`shipit accessory remove %s --volumes` deletes %s)",
      #present > 1 and "s" or "", table.concat(present, ", "), s.name, #present > 1 and "them" or "it")
  end
end, "Remove an accessory's container (named volumes only with --volumes)")
