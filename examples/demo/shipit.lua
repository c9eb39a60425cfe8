-- shipit.lua: optional behaviour on top of the default recipe (see DESIGN.md §2).
-- Every hook receives `h`, the host context: h:run, h:put, h:exists, h.host,
-- h.stage, h.app, h.release, h.release_path, h.app_path, h.previous_release.

-- Before the image is built: stamp the release name into the page, so a
-- browser (or curl) shows which release is live.
before("deploy:build", function(h)
  h:run("sed -i 's/demo-v1/" .. h.release .. "/' " .. h.release_path .. "/www/index.html")
end)

-- After `current` has switched: leave a trace on the host.
after("deploy:symlink", function(h)
  h:run("echo \"$(date -u +%FT%TZ) " .. h.release .. "\" >> " .. h.app_path .. "/deploys.log")
end)

-- When the deploy fails on a host (the host has been put back as it was).
on_failure("deploy", function(h, err)
  run_local("echo 'deploy of " .. h.app .. " failed on " .. h.host .. "' >&2")
end)

-- A custom task: `shipit run tail -s sandbox`.
task("tail", function(h)
  print(h:run("cd " .. h.app_path .. "/current && docker compose logs --tail 20"))
end)
