-- `shipit remove -s STAGE` runs the task "remove" on every host of the
-- stage: the app's releases (their compose projects, with the images built
-- for them) and its directory go. Accessories are not touched here: the
-- command removes them with accessory:remove only when asked
-- (--accessories, --volumes). Each item removed is reported with
-- require("shipit.report"), which the command counts. Hook it like any
-- task, e.g. before("remove", function(h) ... end) to take a last backup.
local shell    = require("shipit.shell")
local compose  = require("shipit.compose")
local releases = require("shipit.releases")
local report   = require("shipit.report")
local hostlock = require("shipit.hostlock")
local time     = require("shipit.time")

local q = shell.quote
local IMAGES = ".shipit-images"

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- words(prefix, list): prefix followed by the elements of list.
local function words(prefix, list)
  local out = {}
  for _, w in ipairs(prefix) do table.insert(out, w) end
  for _, w in ipairs(list) do table.insert(out, w) end
  return out
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do table.insert(out, l) end
  return out
end

-- The release containers of this app and stage still on the host (any
-- state). Accessories carry shipit.app too, but no shipit.release: they
-- never match.
local function release_containers(h)
  return lines(h:run(shell.join({ "docker", "ps", "-aq",
    "--filter", "label=shipit.app=" .. h.app, "--filter", "label=shipit.stage=" .. h.stage,
    "--filter", "label=shipit.release" }), { quiet = true }))
end

-- Images compose built on the host for a release: <app>-<release>-<service>
-- (Compose v2) or <app>-<release>_<service> (v1). Matched by exact prefix,
-- so another app's images never match.
local function built_images(h, release)
  local out = h:run({ "docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}" }, { quiet = true })
  local found = {}
  for _, ref in ipairs(lines(out)) do
    for _, sep in ipairs({ "-", "_" }) do
      local prefix = h.app .. "-" .. release .. sep
      if ref:sub(1, #prefix) == prefix then table.insert(found, ref) break end
    end
  end
  return found
end

-- The release directories on the host, oldest first.
local function list_releases(h)
  local out = h:run("ls -1 " .. q(h.releases_path) .. " 2>/dev/null || true", { quiet = true })
  return releases.sort(lines(out))
end

-- remove_release stops and removes one release's compose project (no
-- drain: the whole app goes), the images built for it and its directory.
local function remove_release(h, name)
  local dir = h.releases_path .. "/" .. name
  local grace = tostring(math.ceil(time.seconds(config.deploy.stop_timeout)))
  -- The images, listed before compose down removes those it built.
  local refs = {}
  if h:exists(dir .. "/" .. IMAGES) then
    refs = lines(h:read(dir .. "/" .. IMAGES))
  end
  for _, ref in ipairs(built_images(h, name)) do table.insert(refs, ref) end
  local c = compose.release(h, name)
  local r = h:run("cd " .. q(c.dir) .. " && " .. compose.command(h) .. " " .. c.args ..
    " down --remove-orphans --rmi local -t " .. grace, { check = false, quiet = true })
  if r.code ~= 0 then
    -- No usable compose files (a release that never started): the label
    -- sweep below removes whatever containers it has.
    log.info("release %s: compose down failed (%s); its containers are removed by label", name,
      trim(r.stderr):match("[^\n]*$"))
  end
  if #refs > 0 then
    h:run(shell.join(words({ "docker", "image", "rm", "-f" }, refs)) .. " >/dev/null 2>&1; true", { quiet = true })
  end
  report.changed("release", "removed " .. name .. (#refs > 0 and (" and its image(s) " .. table.concat(refs, ", ")) or ""))
end

task("remove", function(h)
  -- Never more than the app's own directory under deploy_to.
  if h.app == "" or h.app_path:sub(-(#h.app + 1)) ~= "/" .. h.app or h.app_path == "/" .. h.app then
    fail("refusing to remove " .. q(h.app_path) .. ": not <deploy_to>/<app>")
  end
  local present = h:run({ "test", "-d", h.app_path }, { check = false, quiet = true }).code == 0
  if present then
    -- Waits for (or refuses, as --lock-wait says) a deploy in progress, and
    -- settles what an interrupted one left before anything is removed.
    hostlock.acquire(h, "remove")
    for _, name in ipairs(list_releases(h)) do remove_release(h, name) end
  end
  local left = release_containers(h)
  if #left > 0 then
    h:run(shell.join(words({ "docker", "rm", "-f" }, left)) .. " >/dev/null")
    report.changed("containers", "removed " .. #left .. " container(s) left without a release directory")
  end
  if not present then
    report.ok("directory", h.app_path .. " does not exist: nothing deployed here")
    return
  end
  -- The lock's own file is in the directory: the holder keeps its open
  -- descriptor until the command ends, so removing it is safe.
  h:run({ "rm", "-rf", h.app_path })
  report.changed("directory", "removed " .. h.app_path)
end, "Remove the app from the host: every release's containers and images, and its directory")
