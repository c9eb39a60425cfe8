package traefik

import "testing"

func TestOutrankedByLabels(t *testing.T) {
	orig := routersOf(map[string]string{
		"com.docker.compose.project":            "20250219-140000",
		"traefik.http.routers.shop.rule":        "Host(`shop.example.com`)",
		"traefik.http.routers.shop.entrypoints": "web",
	})
	if len(orig) != 1 || orig[0].priority != int64(len("Host(`shop.example.com`)")) {
		t.Fatalf("the original's router: %+v", orig)
	}
	ours := func(priority, entrypoints string) labelRouter {
		l := map[string]string{
			"com.docker.compose.project":          "shop-20261126-120000",
			"traefik.http.routers.r1.rule":        "Host(`shop.example.com`)",
			"traefik.http.routers.r1.priority":    priority,
			"traefik.http.routers.r1.entrypoints": entrypoints,
		}
		return routersOf(l)[0]
	}
	for _, c := range []struct {
		name string
		o    labelRouter
		want bool
	}{
		{"one priority higher, same entrypoint", ours("25", "web"), true},
		{"same priority", ours("24", "web"), false},
		{"default priority", ours("", "web"), false},
		{"another entrypoint", ours("25", "websecure"), false},
		{"every entrypoint", ours("25", ""), true},
	} {
		rs := append([]labelRouter{c.o}, orig...)
		if got := outrankedByLabels(rs, "20250219-140000"); got != c.want {
			t.Errorf("%s: outranked %v, want %v", c.name, got, c.want)
		}
	}
	if outrankedByLabels([]labelRouter{ours("25", "web")}, "20250219-140000") {
		t.Error("a project without routers counts as outranked")
	}
}
