-- `shipit setup`: idempotent host provisioning. Every step reports each item
-- it looked at with require("shipit.report"): ok (already as wanted) or
-- changed (and what it did); `shipit setup` counts the changed items.
-- Each step is a task of the "setup" pipeline, so shipit.lua can hook or
-- replace any of them (e.g. before("setup:traefik", ...)).
local shell = require("shipit.shell")
local json  = require("shipit.json")
local report = require("shipit.report")
local hostlock = require("shipit.hostlock")

local q = shell.quote

-- The name of the one Traefik container per host: it serves every app
-- deployed there, so it is not named after an app.
local TRAEFIK = "traefik"
local TRAEFIK_NETWORK = "traefik"
local DEFAULT_TRAEFIK_IMAGE = "traefik:v3.3"
-- Must match the certresolver the override gives web routers
-- (internal/override DefaultCertResolver).
local CERT_RESOLVER = "letsencrypt"
local ACME_VOLUME = "traefik-letsencrypt"
-- Traefik's API answers shipit's routing checks (internal/traefik) on the
-- "traefik" entrypoint bound to the loopback of Traefik's own container:
-- nothing outside it can reach the API; shipit reads it with docker exec.
-- Its Prometheus metrics are served there too ([deploy.verify]).
local API_ADDR = "127.0.0.1:8080"

local ok, changed = report.ok, report.changed

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- sudo(h, words) runs a privileged command: directly as root, through
-- `sudo -n` otherwise (setup never prompts for a password).
local function sudo(h, words)
  if h.vars.setup_uid ~= "0" then
    table.insert(words, 1, "-n")
    table.insert(words, 1, "sudo")
  end
  return h:run(words)
end

local function os_release(h)
  local r = h:run("cat /etc/os-release", { check = false, quiet = true })
  local info = {}
  if r.code ~= 0 then return info end
  for k, v in r.stdout:gmatch("([%w_]+)=([^\n]*)") do
    info[k] = v:gsub('^"(.*)"$', "%1")
  end
  return info
end

local function is_debian_like(info)
  local ids = " " .. (info.ID or "") .. " " .. (info.ID_LIKE or "") .. " "
  return ids:find(" debian ") ~= nil or ids:find(" ubuntu ") ~= nil
end

local function apt_install(h, packages)
  if not is_debian_like(h.vars.setup_os) then
    fail("--install-docker only knows apt-get (Debian/Ubuntu); this host is " ..
      (h.vars.setup_os.PRETTY_NAME or "unknown") .. ": install Docker Engine and compose with its package manager, then rerun shipit setup")
  end
  local words = { "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q" }
  for _, p in ipairs(packages) do table.insert(words, p) end
  sudo(h, { "apt-get", "update", "-q" })
  sudo(h, words)
end

task("setup:os", function(h)
  h.vars.setup_uid = trim(h:run("id -u", { quiet = true }))
  local info = os_release(h)
  h.vars.setup_os = info
  if not info.ID then
    log.warn("no /etc/os-release: cannot tell the OS (only --install-docker needs it)")
    ok("os", "unknown")
    return
  end
  ok("os", info.PRETTY_NAME or info.ID)
end, "Check the OS (/etc/os-release)")

task("setup:docker", function(h)
  local has_cli = h:run("command -v docker >/dev/null 2>&1", { check = false, quiet = true }).code == 0
  if not has_cli then
    if params.install_docker ~= "true" then
      fail("Docker is not installed on " .. h.host ..
        ": rerun with `shipit setup -s " .. h.stage .. " --install-docker` (apt-get install docker.io on Debian/Ubuntu), or install Docker Engine yourself")
    end
    apt_install(h, { "docker.io" })
    sudo(h, { "systemctl", "enable", "--now", "docker" })
    changed("docker engine", "installed docker.io with apt-get")
  end
  local r = h:run("docker version --format '{{.Server.Version}}'", { check = false, quiet = true })
  if r.code ~= 0 then
    fail("the Docker engine does not answer on " .. h.host .. ": " .. trim(r.stderr) ..
      " (start it with `systemctl start docker`; a non-root user needs the docker group, which shipit setup adds)")
  end
  local note = ""
  if params.install_docker == "true" and has_cli then note = " (--install-docker: already installed)" end
  if has_cli then ok("docker engine", trim(r.stdout) .. note) end
end, "Check (or install) the Docker engine")

local function compose_version(h)
  local r = h:run("docker compose version --short", { check = false, quiet = true })
  if r.code == 0 then return "v2 plugin " .. trim(r.stdout) end
  r = h:run("docker-compose version --short", { check = false, quiet = true })
  if r.code == 0 then return "v1 " .. trim(r.stdout) end
  return nil
end

task("setup:compose", function(h)
  local v = compose_version(h)
  if v then
    ok("docker compose", v .. ((params.install_docker == "true") and " (--install-docker: already installed)" or ""))
    return
  end
  if params.install_docker ~= "true" then
    fail("neither `docker compose` (v2 plugin) nor docker-compose (v1) is installed on " .. h.host ..
      ": rerun with `shipit setup -s " .. h.stage .. " --install-docker`, or install the compose plugin yourself")
  end
  apt_install(h, { "docker-compose" })
  v = compose_version(h)
  if not v then fail("docker-compose was installed but does not run: check `docker-compose version` on " .. h.host) end
  changed("docker compose", "installed docker-compose with apt-get (" .. v .. ")")
end, "Check (or install) docker compose")

task("setup:group", function(h)
  local user = trim(h:run("id -un", { quiet = true }))
  if h.vars.setup_uid == "0" then
    ok("docker group", user .. " is root")
    return
  end
  local groups = " " .. trim(h:run("id -nG", { quiet = true })) .. " "
  if groups:find(" docker ", 1, true) then
    ok("docker group", user .. " is in group docker")
    return
  end
  sudo(h, { "usermod", "-aG", "docker", user })
  changed("docker group", "added " .. user .. " to group docker (effective for new SSH sessions)")
end, "Add a non-root SSH user to the docker group")

task("setup:network", function(h)
  local r = h:run({ "docker", "network", "inspect", TRAEFIK_NETWORK }, { check = false, quiet = true })
  if r.code == 0 then
    ok("traefik network", TRAEFIK_NETWORK .. " exists")
    return
  end
  h:run({ "docker", "network", "create", TRAEFIK_NETWORK })
  changed("traefik network", "created network " .. TRAEFIK_NETWORK)
end, "Create the external traefik network")

task("setup:dirs", function(h)
  for _, dir in ipairs({ h.app_path, h.releases_path, h.shared_path }) do
    if h:run({ "test", "-d", dir }, { check = false, quiet = true }).code == 0 then
      ok("directory", dir)
    else
      local r = h:run({ "mkdir", "-p", dir }, { check = false })
      if r.code ~= 0 then
        if h.vars.setup_uid == "0" then fail("cannot create " .. dir .. ": " .. trim(r.stderr)) end
        -- deploy_to is often root-owned: create the app's directory with
        -- sudo and give it to the SSH user.
        local user = trim(h:run("id -un", { quiet = true }))
        sudo(h, { "mkdir", "-p", dir })
        sudo(h, { "chown", user, dir })
      end
      changed("directory", "created " .. dir)
    end
  end
  -- shared/ holds the app's secrets: only the deploy user may enter it.
  local smode = trim(h:run({ "stat", "-c", "%a", h.shared_path }, { quiet = true }))
  if smode ~= "700" then
    h:run({ "chmod", "700", h.shared_path })
    changed("shared dir", h.shared_path .. " mode " .. smode .. " -> 700")
  end
  -- From here on the app's directory exists: take its lock (setup waits
  -- for a deploy in progress, and settles what an interrupted one left).
  hostlock.acquire(h, "setup")
  local repo = h.app_path .. "/repo"
  if h:run({ "test", "-f", repo .. "/HEAD" }, { check = false, quiet = true }).code == 0 then
    ok("git repo", repo)
  else
    if h:run("command -v git >/dev/null 2>&1", { check = false, quiet = true }).code ~= 0 then
      fail("git is not installed on " .. h.host .. ": install it (apt-get install git), then rerun shipit setup")
    end
    h:run({ "git", "init", "--bare", "-q", repo })
    changed("git repo", "created bare repository " .. repo)
  end
  -- shared/.env holds the app's secrets: created empty with mode 0600,
  -- never overwritten; a looser mode is tightened.
  local env = h.shared_path .. "/.env"
  if not h:exists(env) then
    h:run("(umask 077 && : > " .. q(env) .. ")")
    changed("env file", "created " .. env .. " (empty, 0600)")
    return
  end
  local mode = trim(h:run({ "stat", "-L", "-c", "%a", env }, { quiet = true }))
  if mode ~= "600" then
    h:run({ "chmod", "600", env })
    changed("env file", env .. " mode " .. mode .. " -> 600")
  else
    ok("env file", env .. " (0600)")
  end
end, "Create repo/ (bare), releases/, shared/ and shared/.env (0600)")

-- The Traefik container as wanted, with a canonical description whose
-- hash labels the container.
local function traefik_spec(h)
  local tr = config.stages[h.stage].traefik
  local ports = params.traefik_ports or ""
  if ports == "" then ports = "80:443" end
  -- An optional leading IPv4 address binds both ports to it only
  -- (127.0.0.1:8088:8443: reachable from this machine alone, as the demo wants).
  local ip, http, https = ports:match("^(%d+%.%d+%.%d+%.%d+):(%d+):(%d+)$")
  if not ip then
    ip = ""
    http, https = ports:match("^(%d+):(%d+)$")
  end
  if not http then
    fail("SHIPIT_TRAEFIK_PORTS must be HTTP:HTTPS host ports such as 80:443 (or ADDRESS:HTTP:HTTPS such as 127.0.0.1:8088:8443), not " .. q(ports))
  end
  -- Traefik talks to the engine setup talks to: the socket of DOCKER_HOST
  -- when it names one, else the standard socket.
  local dh = trim(h:run("printf '%s' \"${DOCKER_HOST:-}\"", { quiet = true }))
  local sock = dh:match("^unix://(.+)$") or "/var/run/docker.sock"
  if dh ~= "" and not dh:match("^unix://") then
    log.warn("DOCKER_HOST=%s is not a unix socket: Traefik gets /var/run/docker.sock", dh)
  end
  local spec = {
    image = (tr.image ~= "" and tr.image) or DEFAULT_TRAEFIK_IMAGE,
    args = {
      "--providers.docker=true",
      "--providers.docker.exposedbydefault=false",
      "--providers.docker.network=" .. TRAEFIK_NETWORK,
      -- Traefik applies Docker's events (a release healthy, one drained)
      -- after this throttle (default 2s): it bounds both halves of the
      -- switch. 500ms keeps reloads rare enough for any fleet shipit drives
      -- (e2e/traefikfacts_test.go measured both values).
      "--providers.providersThrottleDuration=500ms",
      "--entrypoints.web.address=:80",
      "--entrypoints.websecure.address=:443",
      "--entrypoints.traefik.address=" .. API_ADDR,
      "--api.insecure=true",
      -- Prometheus metrics on the same internal entrypoint: what
      -- [deploy.verify] reads after the switch (internal/metrics).
      "--metrics.prometheus=true",
      "--metrics.prometheus.entryPoint=traefik",
      "--metrics.prometheus.addServicesLabels=true",
      "--metrics.prometheus.addEntryPointsLabels=false",
      "--metrics.prometheus.buckets=0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10",
    },
    ports = { ["80/tcp"] = http, ["443/tcp"] = https },
    bind_ip = ip,
    binds = { sock .. ":/var/run/docker.sock:ro" },
    restart = "unless-stopped",
    network = TRAEFIK_NETWORK,
  }
  if tr.tls then
    if tr.acme_email == "" then
      log.warn("tls = true but [stages.%s.traefik] acme_email is empty: Let's Encrypt may refuse the account", h.stage)
    end
    for _, a in ipairs({
      "--certificatesresolvers." .. CERT_RESOLVER .. ".acme.email=" .. tr.acme_email,
      "--certificatesresolvers." .. CERT_RESOLVER .. ".acme.storage=/letsencrypt/acme.json",
      "--certificatesresolvers." .. CERT_RESOLVER .. ".acme.httpchallenge.entrypoint=web",
    }) do table.insert(spec.args, a) end
    table.insert(spec.binds, ACME_VOLUME .. ":/letsencrypt")
  end
  local canon = table.concat({
    "image=" .. spec.image, "args=" .. table.concat(spec.args, " "),
    "ports=80:" .. http .. ",443:" .. https .. (ip ~= "" and (",ip=" .. ip) or ""), "binds=" .. table.concat(spec.binds, ","),
    "restart=" .. spec.restart, "network=" .. spec.network,
  }, "\n")
  spec.hash = trim(h:run({ "sha256sum" }, { stdin = canon, quiet = true })):match("^(%x+)")
  return spec
end

local function list_eq(a, b)
  a, b = a or {}, b or {}
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function sorted(list)
  local out = {}
  for _, v in ipairs(list or {}) do table.insert(out, v) end
  table.sort(out)
  return out
end

local function hc_has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- What differs between the running container (docker inspect) and spec.
local function traefik_diff(c, spec)
  local d = {}
  local cfg, hc = c.Config or {}, c.HostConfig or {}
  if cfg.Image ~= spec.image then table.insert(d, "image " .. tostring(cfg.Image) .. " -> " .. spec.image) end
  if not list_eq(cfg.Cmd, spec.args) then table.insert(d, "args") end
  local pb = hc.PortBindings or {}
  for _, port in ipairs({ "80/tcp", "443/tcp" }) do
    local want = spec.ports[port]
    local got = pb[port] and pb[port][1] and pb[port][1].HostPort or "none"
    if got ~= want then table.insert(d, "port " .. port .. " " .. got .. " -> " .. want) end
    local got_ip = pb[port] and pb[port][1] and pb[port][1].HostIp or ""
    if got_ip == "0.0.0.0" then got_ip = "" end
    if got_ip ~= spec.bind_ip then
      table.insert(d, "port " .. port .. " address " .. (got_ip == "" and "all" or got_ip) .. " -> " ..
        (spec.bind_ip == "" and "all" or spec.bind_ip))
    end
  end
  -- Docker may list binds in another order than given.
  local got_binds, want_binds = sorted(hc.Binds), sorted(spec.binds)
  if not list_eq(got_binds, want_binds) then
    local parts = {}
    for _, b in ipairs(want_binds) do if not hc_has(got_binds, b) then table.insert(parts, "+" .. b) end end
    for _, b in ipairs(got_binds) do if not hc_has(want_binds, b) then table.insert(parts, "-" .. b) end end
    table.insert(d, "mounts " .. table.concat(parts, " "))
  end
  local restart = hc.RestartPolicy and hc.RestartPolicy.Name or ""
  if restart ~= spec.restart then table.insert(d, "restart " .. restart .. " -> " .. spec.restart) end
  if hc.NetworkMode ~= spec.network then table.insert(d, "network " .. tostring(hc.NetworkMode) .. " -> " .. spec.network) end
  local labels = cfg.Labels or {}
  if #d == 0 and labels["shipit.config-hash"] ~= spec.hash then table.insert(d, "config hash") end
  return d
end

local function traefik_run(h, spec)
  local pre = spec.bind_ip ~= "" and (spec.bind_ip .. ":") or ""
  local words = { "docker", "run", "-d", "--name", TRAEFIK, "--restart", spec.restart, "--network", spec.network,
    "-p", pre .. spec.ports["80/tcp"] .. ":80", "-p", pre .. spec.ports["443/tcp"] .. ":443",
    "--label", "shipit.config-hash=" .. spec.hash, "--label", "shipit.managed=setup" }
  for _, b in ipairs(spec.binds) do
    table.insert(words, "-v")
    table.insert(words, b)
  end
  table.insert(words, spec.image)
  for _, a in ipairs(spec.args) do table.insert(words, a) end
  h:run(words)
end

-- traefik_replace swaps the running Traefik for spec: the image is pulled
-- first (the old one serves meanwhile), and the old container is put back
-- if the new one does not start.
local function traefik_replace(h, spec)
  if h:run({ "docker", "image", "inspect", spec.image }, { check = false, quiet = true }).code ~= 0 then
    h:run({ "docker", "pull", spec.image })
  end
  local old = TRAEFIK .. "-replaced"
  h:run({ "docker", "rm", "-f", old }, { check = false, quiet = true })
  h:run({ "docker", "stop", TRAEFIK }, { quiet = true })
  h:run({ "docker", "rename", TRAEFIK, old }, { quiet = true })
  local okk, err = pcall(function()
    traefik_run(h, spec)
    -- Give it a moment: a bad flag or a port in use ends it at once.
    h:run("sleep 2")
    local st = trim(h:run({ "docker", "inspect", "-f", "{{.State.Running}}", TRAEFIK }, { quiet = true }))
    if st ~= "true" then
      local logs = h:run({ "docker", "logs", "--tail", "20", TRAEFIK }, { check = false, quiet = true })
      error("the new Traefik container does not stay up:\n" .. trim(logs.stdout .. logs.stderr))
    end
  end)
  if not okk then
    h:run({ "docker", "rm", "-f", TRAEFIK }, { check = false, quiet = true })
    h:run({ "docker", "rename", old, TRAEFIK }, { quiet = true })
    h:run({ "docker", "start", TRAEFIK }, { quiet = true })
    fail("replacing Traefik failed, the previous container is back: " .. tostring(err))
  end
  h:run({ "docker", "rm", "-f", old }, { quiet = true })
end

task("setup:traefik", function(h)
  local spec = traefik_spec(h)
  local r = h:run({ "docker", "inspect", "--type", "container", TRAEFIK }, { check = false, quiet = true })
  if r.code ~= 0 then
    traefik_run(h, spec)
    changed("traefik", "started container " .. TRAEFIK .. " (" .. spec.image .. ")")
    return
  end
  local c = json.decode(r.stdout)[1]
  -- Never replace a Traefik someone else runs under that name.
  if ((c.Config or {}).Labels or {})["shipit.managed"] ~= "setup" then
    fail("a container named " .. TRAEFIK .. " exists on " .. h.host .. " but shipit setup did not create it: " ..
      "remove it (`docker rm -f " .. TRAEFIK .. "`) to let setup run Traefik, or replace this step in shipit.lua " ..
      "(task(\"setup:traefik\", ...)) to keep your own")
  end
  local diff = traefik_diff(c, spec)
  if #diff > 0 then
    traefik_replace(h, spec)
    changed("traefik", "recreated container " .. TRAEFIK .. ": " .. table.concat(diff, ", "))
    return
  end
  if not (c.State and c.State.Running) then
    h:run({ "docker", "start", TRAEFIK })
    changed("traefik", "started stopped container " .. TRAEFIK)
    return
  end
  ok("traefik", TRAEFIK .. " running " .. spec.image)
end, "Run Traefik (one per host, for every app) with a restart policy")

task("setup", {
  "setup:os", "setup:docker", "setup:compose", "setup:group",
  "setup:network", "setup:dirs", "setup:traefik",
}, "Provision the host: Docker, compose, traefik network and container, deploy directories")
