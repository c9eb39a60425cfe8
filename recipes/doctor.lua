-- `shipit doctor`: a preflight checklist per host. Every check reports its
-- items with require("shipit.report"): ok, warn or fail (with the fix). A
-- failed check does not stop the others; `shipit doctor` fails when any
-- item failed. Each check is a task of the "doctor" pipeline, so shipit.lua
-- can hook, replace or add checks (report items the same way).
local shell    = require("shipit.shell")
local json     = require("shipit.json")
local lockfile = require("shipit.lockfile")
local report   = require("shipit.report")

local q = shell.quote

-- Below these, free disk space is a warning.
local MIN_FREE_KB = 1024 * 1024
local MIN_FREE_PCT = 5

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function setup_fix(h)
  return "run `shipit setup -s " .. h.stage .. "`"
end

-- check runs one check; an unexpected error becomes a failed item instead of
-- ending the checklist.
local function check(item, fn)
  return function(h)
    local okk, err = pcall(fn, h)
    if not okk then
      report.fail(item, tostring(err):gsub("\n.*", ""), "rerun with -v to see the failing command")
    end
  end
end

local function quiet(h, cmd)
  return h:run(cmd, { check = false, quiet = true })
end

task("doctor:ssh", check("ssh", function(h)
  -- Connecting at all proves the host is reachable, its key is known (or
  -- was accepted with --accept-new-host-keys) and authentication worked.
  report.ok("reachable", h.host)
  report.ok("host key known", "matches known_hosts")
  report.ok("auth", "logged in as " .. trim(h:run("id -un", { quiet = true })))
end), "Reachable, host key known, authenticated")

-- Every SSH session starts the user's login shell, and bash reads ~/.bashrc
-- for it (sshd sets SSH_CLIENT): a deploy starts two (shipit's warm shell
-- and the lock's holder), `shipit exec` one per host. Measured as sshd
-- starts it, best of three; above SLOW_SHELL_MS it is worth a look.
local SLOW_SHELL_MS = 50
local SHELL_COST = [[case $(date +%N) in ''|*[!0-9]*) exit 3;; esac
sh=${SHELL:-/bin/sh}; best=
for i in 1 2 3; do
  s=$(date +%s%N)
  env -u SHLVL SSH_CLIENT="${SSH_CLIENT:-127.0.0.1 22 22}" "$sh" -c true </dev/null >/dev/null 2>&1
  e=$(date +%s%N); n=$(( (e - s) / 1000000 ))
  if [ -z "$best" ] || [ "$n" -lt "$best" ]; then best=$n; fi
done
echo "$best $sh"]]

task("doctor:shell", check("login shell", function(h)
  local r = quiet(h, SHELL_COST)
  local ms, sh = r.stdout:match("^(%d+) (%S+)")
  if r.code ~= 0 or not ms then
    report.ok("login shell", "start-up not measured (no nanosecond clock on the host)")
    return
  end
  local detail = sh .. " starts in " .. ms .. " ms per SSH session; a deploy starts 2"
  if tonumber(ms) > SLOW_SHELL_MS then
    report.warn("login shell", detail,
      "make the deploy user's start-up files (bash: ~/.bashrc) return early for non-interactive shells, as the .bashrc Debian gives new users does: " ..
      "`case $- in *i*) ;; *) return;; esac` at the top of ~/.bashrc")
    return
  end
  report.ok("login shell", detail)
end), "The login shell's start-up, which every SSH session pays")

task("doctor:docker", check("docker", function(h)
  if quiet(h, "command -v docker >/dev/null 2>&1").code ~= 0 then
    report.fail("docker", "not installed", "run `shipit setup -s " .. h.stage .. " --install-docker`, or install Docker Engine")
    return
  end
  local r = quiet(h, "docker version --format '{{.Server.Version}}'")
  if r.code ~= 0 then
    report.fail("docker", "engine not answering: " .. trim(r.stderr):gsub("\n.*", ""),
      "start it (`systemctl start docker`); a non-root user needs the docker group: " .. setup_fix(h))
    return
  end
  report.ok("docker", "engine " .. trim(r.stdout))
end), "Docker engine version")

task("doctor:compose", check("compose", function(h)
  local r = quiet(h, "docker compose version --short")
  if r.code == 0 then report.ok("compose", "v2 plugin " .. trim(r.stdout)) return end
  r = quiet(h, "docker-compose version --short")
  if r.code == 0 then report.ok("compose", "v1 " .. trim(r.stdout)) return end
  report.fail("compose", "neither `docker compose` nor docker-compose found",
    "run `shipit setup -s " .. h.stage .. " --install-docker`, or install the compose plugin")
end), "Compose flavor and version")

-- disk reports free space of the file system holding path (or its nearest
-- existing parent).
local function disk(h, item, path)
  local cmd = "p=" .. q(path) .. "; while [ ! -e \"$p\" ] && [ \"$p\" != / ]; do p=$(dirname \"$p\"); done; df -Pk \"$p\" | tail -n 1"
  local r = quiet(h, cmd)
  local size, avail = r.stdout:match("^%S+%s+(%d+)%s+%d+%s+(%d+)")
  if r.code ~= 0 or not size then
    report.fail(item, "cannot read free space of " .. path .. ": " .. trim(r.stderr), "check `df " .. path .. "` on the host")
    return
  end
  size, avail = tonumber(size), tonumber(avail)
  local pct = size > 0 and math.floor(avail * 100 / size) or 0
  local detail = string.format("%.1f GiB free (%d%%) under %s", avail / 1048576, pct, path)
  if avail < MIN_FREE_KB or pct < MIN_FREE_PCT then
    report.warn(item, detail, "free space: `docker system prune`, fewer keep_releases, or a bigger disk")
  else
    report.ok(item, detail)
  end
end

task("doctor:disk", check("disk", function(h)
  disk(h, "disk deploy_to", config.deploy.deploy_to)
  local r = quiet(h, "docker info --format '{{.DockerRootDir}}'")
  if r.code ~= 0 or trim(r.stdout) == "" then
    report.fail("disk docker", "cannot read Docker's root dir: " .. trim(r.stderr):gsub("\n.*", ""), "see the docker item above")
    return
  end
  disk(h, "disk docker", trim(r.stdout))
end), "Free disk space under deploy_to and Docker's root dir")

task("doctor:dirs", check("directories", function(h)
  local missing, readonly = {}, {}
  for _, dir in ipairs({ h.app_path, h.app_path .. "/repo", h.releases_path, h.shared_path }) do
    if quiet(h, { "test", "-d", dir }).code ~= 0 then
      table.insert(missing, dir)
    elseif quiet(h, { "test", "-w", dir }).code ~= 0 then
      table.insert(readonly, dir)
    end
  end
  if #missing > 0 then
    report.fail("directories", "missing: " .. table.concat(missing, ", "), setup_fix(h))
  elseif #readonly > 0 then
    report.fail("directories", "not writable: " .. table.concat(readonly, ", "),
      "give the SSH user write access (chown -R USER " .. h.app_path .. ")")
  else
    report.ok("directories", h.app_path .. " (repo, releases, shared) writable")
  end
end), "Deploy directories exist and are writable")

task("doctor:network", check("traefik network", function(h)
  if quiet(h, { "docker", "network", "inspect", "traefik" }).code == 0 then
    report.ok("traefik network", "traefik")
  else
    report.fail("traefik network", "missing", setup_fix(h) .. " (or `docker network create traefik`)")
  end
end), "External traefik network present")

task("doctor:traefik", check("traefik", function(h)
  local r = quiet(h, "docker inspect --type container -f '{{.State.Status}} {{.Config.Image}}' traefik")
  if r.code ~= 0 then
    report.fail("traefik", "no container named traefik", setup_fix(h))
    return
  end
  local state, image = trim(r.stdout):match("^(%S+)%s*(.*)$")
  if state ~= "running" then
    report.fail("traefik", "container traefik is " .. tostring(state), "`docker logs traefik` to see why, then " .. setup_fix(h))
    return
  end
  report.ok("traefik", "running " .. image)
end), "Traefik container running")

task("doctor:lock", check("shipit.lock", function(h)
  local path = h.app_path .. "/shipit.lock"
  if not h:exists(path) then
    report.warn("shipit.lock", "none: nothing deployed yet", "`shipit deploy -s " .. h.stage .. "`")
    return
  end
  local text = quiet(h, { "cat", path })
  if text.code ~= 0 then
    report.fail("shipit.lock", "unreadable: " .. trim(text.stderr), "give the SSH user read access to " .. path)
    return
  end
  local okk, l = pcall(lockfile.decode, text.stdout)
  if not okk or type(l) ~= "table" then
    local msg = tostring(l):gsub("\n.*", ""):gsub("^[^:]*:%d+: ", "")
    report.fail("shipit.lock", "not valid: " .. msg,
      "the next `shipit deploy -s " .. h.stage .. "` rewrites it (releases stay on the host; `shipit releases` lists them)")
    return
  end
  h.vars.doctor_lock = l
  report.ok("shipit.lock", "current " .. (l.current_release ~= "" and l.current_release or "(none)"))
end), "shipit.lock readable")

task("doctor:release", check("current release", function(h)
  local rel = h.vars.doctor_lock and h.vars.doctor_lock.current_release or ""
  if rel == "" then
    local r = quiet(h, { "readlink", h.app_path .. "/current" })
    if r.code == 0 then rel = trim(r.stdout):match("([^/]+)$") or "" end
  end
  if rel == "" then
    report.warn("current release", "none deployed", "`shipit deploy -s " .. h.stage .. "`")
    return
  end
  local project = require("shipit.compose").release(h, rel).project
  local r = h:run("docker ps -a --filter " .. q("label=com.docker.compose.project=" .. project) ..
    " --format '{{.Names}}\t{{.State}}\t{{.Label \"com.docker.compose.service\"}}'", { quiet = true })
  local problems, web, n = {}, {}, 0
  for name, state, service in r:gmatch("([^\t\n]+)\t([^\t\n]+)\t([^\n]*)") do
    n = n + 1
    if state ~= "running" then table.insert(problems, name .. " " .. state) end
    if service == config.deploy.web_service then table.insert(web, name) end
  end
  if n == 0 then
    report.fail("current release", rel .. ": no containers", "`shipit deploy -s " .. h.stage .. "` or `shipit rollback -s " .. h.stage .. "`")
    return
  end
  for _, name in ipairs(web) do
    local health = trim(quiet(h, { "docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", name }).stdout)
    if health ~= "healthy" then table.insert(problems, name .. " " .. health) end
  end
  if #web == 0 then table.insert(problems, "no " .. config.deploy.web_service .. " container") end
  if #problems > 0 then
    report.fail("current release", rel .. ": " .. table.concat(problems, ", "),
      "`shipit logs -s " .. h.stage .. "` to see why; `shipit rollback -s " .. h.stage .. "` to go back")
    return
  end
  report.ok("current release", rel .. " healthy (" .. n .. (n == 1 and " container)" or " containers)"))
end), "Containers of the current release running and healthy")

task("doctor", {
  "doctor:ssh", "doctor:shell", "doctor:docker", "doctor:compose", "doctor:disk", "doctor:dirs",
  "doctor:network", "doctor:traefik", "doctor:lock", "doctor:release",
}, "Preflight checklist: SSH, the login shell, Docker, compose, disk, directories, Traefik, current release, shipit.lock")
