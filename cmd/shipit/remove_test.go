package main

import (
	"bufio"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/app/orchestrator"
)

// Only an explicit yes removes; the question names what goes and what stays.
func TestRemoveConfirm(t *testing.T) {
	hosts := []orchestrator.Host{{Name: "10.0.0.1"}, {Name: "10.0.0.2"}}
	for _, tc := range []struct {
		answer string
		c      RemoveCmd
		want   bool
		says   string
	}{
		{"y\n", RemoveCmd{}, true, "(accessories db, redis are kept)"},
		{"YES\n", RemoveCmd{Accessories: true}, true, "accessories db, redis (their volumes are kept)"},
		{"yes", RemoveCmd{Accessories: true, Volumes: true}, true, "and the volumes shipit created for them (their data is lost)"},
		{"\n", RemoveCmd{}, false, "Remove shop? [y/N] "},
		{"n\n", RemoveCmd{}, false, "every release's containers and images, and /var/deploy/shop"},
		{"yep\n", RemoveCmd{}, false, "2 host(s): 10.0.0.1, 10.0.0.2"},
		{"", RemoveCmd{}, false, "This removes app shop from stage production"},
	} {
		tc.c.Stage = "production"
		var out strings.Builder
		got, err := tc.c.confirm(&out, bufio.NewReader(strings.NewReader(tc.answer)), "shop", "/var/deploy/shop", hosts, []string{"db", "redis"})
		if err != nil {
			t.Fatalf("%q: %v", tc.answer, err)
		}
		if got != tc.want {
			t.Errorf("answer %q: confirmed %v, want %v", tc.answer, got, tc.want)
		}
		if !strings.Contains(out.String(), tc.says) {
			t.Errorf("answer %q: the question\n%s\nlacks %q", tc.answer, out.String(), tc.says)
		}
	}
}
