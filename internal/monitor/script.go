package monitor

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/shipit-dev/shipit/internal/shell"
)

func script(spec Spec, full bool) string {
	var b strings.Builder
	// stderr of each probe goes to a temp file so stdout stays parseable.
	b.WriteString(`e=$(mktemp 2>/dev/null) || e=/tmp/shipit-monitor.$$
trap 'rm -f "$e"' EXIT
sec() { n=$1; shift; printf '\n@@S %s\n' "$n"; "$@" 2>"$e"; printf '\n@@E %s %d\n' "$n" $?; cat "$e"; }
`)
	fmt.Fprintf(&b, "app=%s\nbase=%s\ndir=\"$base/$app\"\n", shell.Quote(spec.App), shell.Quote(spec.DeployTo))
	b.WriteString("sec current readlink \"$dir/current\"\n")
	b.WriteString("sec lock cat \"$dir/shipit.lock\"\n")
	// App containers by label, accessories by their exact name (the name
	// filter is a regexp, hence QuoteMeta; the exact match is checked again
	// when parsing).
	b.WriteString("ids() {\n  docker ps -aq --no-trunc --filter \"label=shipit.app=$app\" || return\n")
	for _, acc := range spec.Accessories {
		filter := "name=^/?" + regexp.QuoteMeta(spec.App+"-"+acc) + "$"
		fmt.Fprintf(&b, "  docker ps -aq --no-trunc --filter %s || return\n", shell.Quote(filter))
	}
	b.WriteString("}\n")
	b.WriteString(`ids=$(ids 2>"$e"); rc=$?
ids=$(printf '%s\n' "$ids" | sort -u)
printf '\n@@S ids\n%s\n@@E ids %d\n' "$ids" $rc; cat "$e"
`)
	// $ids is unquoted on purpose: it holds hex container IDs, one per word.
	b.WriteString(`if [ -n "$ids" ]; then
  sec inspect docker inspect $ids
  sec stats docker stats --no-stream --format '{{json .}}' $ids
fi
sec dfdeploy df -Pk "$base"
root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null)
if [ -n "$root" ]; then
  printf '\n@@S dockerroot\n%s\n@@E dockerroot 0\n' "$root"
  sec dfdocker df -Pk "$root"
fi
`)
	if full {
		b.WriteString(`if [ -d "$dir" ]; then sec du du -sk "$dir"; fi
sec sysdf docker system df --format '{{json .}}'
`)
	}
	return b.String()
}
