// Package hostinfo is what several Lua modules need to know of a host,
// found once per host run: not a module itself, so that no module imports
// another.
package hostinfo

import (
	"github.com/shipit-dev/shipit/internal/compose"
	"github.com/shipit-dev/shipit/runtime"
)

var flavorSlot = runtime.NewHostSlot[compose.Flavor]("compose.flavor")

// ComposeFlavor is the host's Compose (v2 plugin or v1), detected once per
// host run.
func ComposeFlavor(h *runtime.Host) (compose.Flavor, error) {
	return flavorSlot.Get(h, "", detect(h))
}

// StartComposeFlavor detects the host's Compose in the background: the
// first ComposeFlavor waits for it.
func StartComposeFlavor(h *runtime.Host) {
	flavorSlot.Start(h, "", detect(h))
}

func detect(h *runtime.Host) func() (compose.Flavor, error) {
	return func() (compose.Flavor, error) { return compose.Detect(h.Context(), h.Conn) }
}
