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

local function volume_exists(h, v)
  return h:run({ "docker", "volume", "inspect", v }, { check = false, quiet = true }).code == 0
end

-- volume_owner says who created a volume: "app/accessory" from the labels
-- shipit puts on the volumes it creates, "/" for a volume shipit did not
-- create, nil when there is no such volume.
local function volume_owner(h, v)
  local r = h:run({ "docker", "volume", "inspect", "--format",
    '{{index .Labels "shipit.app"}}/{{index .Labels "shipit.accessory"}}', v }, { check = false, quiet = true })
  if r.code ~= 0 then return nil end
  return (r.stdout:gsub("%s+$", ""))
end

-- Named volumes are mounted by the name written in shipit.toml, as Docker
-- and the original shipit do; shipit creates (and labels) only the missing
-- ones. Done before anything is stopped. Earlier versions of shipit named
-- them <app>-<accessory>-NAME: refuse to boot on an empty NAME while such a
-- volume holds the data.
local function ensure_volumes(h, s)
  for _, v in ipairs(s.named_volumes) do
    local legacy = h.app .. "-" .. s.name .. "-" .. v
    if not volume_exists(h, v) and volume_owner(h, legacy) == h.app .. "/" .. s.name then
      fail("volume " .. v .. " does not exist, but " .. legacy .. " does: an earlier shipit named " .. s.name ..
        "'s volumes <app>-<accessory>-NAME; shipit now mounts NAME as written in shipit.toml. " ..
        "To keep the data, write volumes = [\"" .. legacy .. ":/path\"] in shipit.toml, or copy it into " .. v ..
        " (docker volume create " .. v .. " && docker run --rm -v " .. legacy .. ":/from -v " .. v ..
        ":/to " .. s.image .. " cp -a /from/. /to/)")
    end
  end
  for _, cmd in ipairs(s.volume_create) do h:run(cmd) end
end

-- start runs the container and checks it stays up; on failure it shows the
-- container's last log lines.
local function start(h, s)
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
  ensure_volumes(h, s)
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
  -- The named volumes of shipit.toml, and any left labelled for this
  -- accessory (a volume since dropped from shipit.toml). Only the volumes
  -- shipit created for this accessory are ever deleted: a volume that
  -- existed before (made by hand or by the original shipit) or that
  -- another app or accessory created may hold someone else's data.
  local vols, seen = {}, {}
  for _, v in ipairs(s.named_volumes) do
    if not seen[v] then table.insert(vols, v) seen[v] = true end
  end
  local out = h:run(shell.join({ "docker", "volume", "ls", "-q",
    "--filter", "label=shipit.app=" .. h.app, "--filter", "label=shipit.accessory=" .. s.name }), { quiet = true })
  for v in out:gmatch("[^\n]+") do
    if not seen[v] then table.insert(vols, v) seen[v] = true end
  end
  local mine, foreign = {}, {}
  for _, v in ipairs(vols) do
    local owner = volume_owner(h, v)
    if owner == h.app .. "/" .. s.name then
      table.insert(mine, v)
    elseif owner then
      table.insert(foreign, v)
    end
  end
  local function plural(t, one, many) return #t > 1 and many or one end
  if #foreign > 0 then
    say(s, "kept volume%s %s: shipit did not create %s for %s (%s before, or another app or accessory created %s), " ..
      "so shipit never deletes %s",
      plural(foreign, "", "s"), table.concat(foreign, ", "), plural(foreign, "it", "them"), s.name,
      plural(foreign, "it existed", "they existed"), plural(foreign, "it", "them"), plural(foreign, "it", "them"))
  end
  if #mine == 0 then return end
  if params.volumes ~= "true" then
    say(s, "kept volume%s %s (`shipit accessory remove %s --volumes` deletes %s)",
      plural(mine, "", "s"), table.concat(mine, ", "), s.name, plural(mine, "it", "them"))
    return
  end
  for _, v in ipairs(mine) do
    local users = h:run(shell.join({ "docker", "ps", "-a", "--filter", "volume=" .. v, "--format", "{{.Names}}" }),
      { quiet = true }):gsub("%s+$", ""):gsub("\n", ", ")
    if users ~= "" then
      say(s, "kept volume %s: still used by container %s", v, users)
    else
      h:run({ "docker", "volume", "rm", v })
      say(s, "removed volume %s", v)
    end
  end
end, "Remove an accessory's container (with --volumes, also the named volumes shipit created for it)")
