// Package releases names and orders releases: timestamped directory names
// that sort by time, and which of them keep_releases lets go.
package releases

import (
	"sort"
	"time"
)

// Layout is the release name format (UTC): sortable and readable.
const Layout = "20060102-150405"

// Name returns the release name for t.
func Name(t time.Time) string { return t.UTC().Format(Layout) }

// Next returns the name one second after name, for collisions.
func Next(name string) string {
	t, err := time.Parse(Layout, name)
	if err != nil {
		return name + "-1"
	}
	return Name(t.Add(time.Second))
}

// Timestamp is the RFC 3339 UTC time written in shipit.lock.
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Prune returns the releases to delete: all but the newest keep, never one
// of protect (the current release and the rollback target).
func Prune(names []string, keep int, protect ...string) []string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	prot := map[string]bool{}
	for _, p := range protect {
		if p != "" {
			prot[p] = true
		}
	}
	if len(sorted) <= keep {
		return nil
	}
	var del []string
	for _, n := range sorted[:len(sorted)-keep] {
		if !prot[n] {
			del = append(del, n)
		}
	}
	return del
}
