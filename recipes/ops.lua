-- Everyday operations on the current release: `shipit logs` runs app:logs
-- and `shipit app exec` runs app:exec on every host (or those picked with
-- --hosts); `shipit recover` runs recover. Both read their command-line values from `params`, so a
-- project's shipit.lua can replace or hook them like any step.
local shell   = require("shipit.shell")
local compose = require("shipit.compose")
local stream  = require("shipit.stream")

local q = shell.quote
local D = config.deploy
local OVERRIDE = "docker-compose.override.yml"

-- The current release, or a failure that says how to get one.
local function current(h)
  if h.release == "" or not h:exists(h.release_path .. "/" .. OVERRIDE) then
    fail("no current release on this host: deploy first (shipit deploy -s " .. h.stage .. ")")
  end
  return h.release
end

-- `cd <release> && exec <compose> -p <app>-<release> -f ... ARGS`; exec so
-- that the compose process itself is what a follow session kills.
local function compose_cmd(h, args)
  local r = compose.release(h, h.release)
  return "cd " .. q(r.dir) .. " && exec " .. compose.command(h) .. " " .. r.args .. " " .. args
end

-- Fail with the list of services when `service` is not in the release.
local function check_service(h, service)
  local out = h:run(compose_cmd(h, "config --services"), { quiet = true })
  local names = {}
  for name in out:gmatch("[^\n]+") do
    if name == service then return end
    table.insert(names, name)
  end
  fail(string.format("no service %q in release %s (services: %s)", service, h.release, table.concat(names, ", ")))
end

-- Raise unless a streamed command ended well; an interrupted one (Ctrl-C)
-- is a normal end.
local function finish(what, code, why)
  if code == nil and why == "interrupted" then return end
  if code ~= 0 then fail(string.format("%s exited with code %d", what, code)) end
end

task("app:logs", function(h)
  current(h)
  local words = { "logs", "--no-color" }
  if params.tail then table.insert(words, "--tail=" .. params.tail) end
  if params.since then
    if compose.flavor(h) == "v1" then
      fail("--since needs Compose v2 (this host has docker-compose v1); use --tail instead")
    end
    table.insert(words, "--since=" .. params.since)
  end
  local follow = params.follow == "1"
  if follow then table.insert(words, "--follow") end
  if params.service then
    check_service(h, params.service)
    table.insert(words, "--")
    table.insert(words, params.service)
  end
  finish("compose logs", stream.run(h, compose_cmd(h, shell.join(words)), { follow = follow }))
end, "Show the logs of the current release (params: service, tail, since, follow)")

-- The first running container of the web service, or a failure.
local function web_container(h)
  local out = h:run({ "docker", "ps", "-q",
    "--filter", "label=com.docker.compose.project=" .. compose.release(h, h.release).project,
    "--filter", "label=com.docker.compose.service=" .. D.web_service,
    "--filter", "status=running" }, { quiet = true })
  local id = out:match("%S+")
  if not id then
    fail(string.format("no running %s container in release %s (see `shipit logs -s %s %s`); --new starts a fresh one",
      D.web_service, h.release, h.stage, D.web_service))
  end
  return id
end

task("app:exec", function(h)
  current(h)
  local cmd = params.cmd
  if not cmd or cmd == "" then fail("no command given") end
  local tty = params.interactive == "1"
  local line
  if params.new == "1" then
    check_service(h, D.web_service)
    line = compose_cmd(h, "run --rm --no-deps " .. (tty and "" or "-T ") .. q(D.web_service) .. " " .. cmd)
  else
    line = "exec docker exec " .. (tty and "-it " or "") .. q(web_container(h)) .. " " .. cmd
  end
  if tty then
    local code = stream.tty(h, line)
    if code ~= 0 then fail(string.format("command exited with code %d", code)) end
    return
  end
  finish("command", stream.run(h, line, { follow = true }))
end, "Run a command in the web service of the current release (params: cmd, new, interactive)")

-- `shipit recover`: take the app's lock, which first settles what an
-- interrupted deploy or rollback left on the host (its journal) and stops
-- any release of this app and stage that runs but is not current. The
-- holder reports what it did; nothing to do is the common answer.
task("recover", function(h)
  require("shipit.hostlock").acquire(h, "recover")
  local cur = h:run({ "readlink", h.app_path .. "/current" }, { check = false, quiet = true })
  require("shipit.report").ok("host", "settled; current " .. ((cur.code == 0 and cur.stdout:match("([^/\n]+)%s*$")) or "(none)"))
end, "Settle what an interrupted deploy or rollback left, and stop releases that run but are not current")
