package runtime

// Modules keep state per host run (a host's Compose flavour, its deploy
// lock) and per command run (one local build for every host). A slot is
// that state's typed key, declared once in the module: a misspelt slot is
// a compile error, not a second cache nobody fills (k6 gives each module a
// typed instance per VU for the same reason).

// HostSlot is a module's value of type T per host run, and per key for a
// slot that holds several (a release's compose description per name).
type HostSlot[T any] struct{ name string }

// NewHostSlot declares a host slot; name is for debugging only.
func NewHostSlot[T any](name string) *HostSlot[T] { return &HostSlot[T]{name: name} }

type slotKey struct {
	slot any
	key  string
}

// Get returns the host's value for key, computing it with fn the first
// time (an error is not kept: the next Get tries again).
func (s *HostSlot[T]) Get(h *Host, key string, fn func() (T, error)) (T, error) {
	v, err := h.memo(slotKey{s, key}, func() (any, error) { return fn() })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// Start computes the host's value for key in the background, so that it
// overlaps whatever the host does next; a Get meanwhile waits for it. An
// error is dropped: the next Get computes it again and returns its own.
func (s *HostSlot[T]) Start(h *Host, key string, fn func() (T, error)) {
	go func() { _, _ = s.Get(h, key, fn) }()
}

// RunSlot is a module's value of type T per command run, shared by every
// host, per key.
type RunSlot[T any] struct{ name string }

// NewRunSlot declares a run slot; name is for debugging only.
func NewRunSlot[T any](name string) *RunSlot[T] { return &RunSlot[T]{name: name} }

// Get returns the run's value for key, computing it once with fn (its
// error too is shared: every host sees the one failure).
func (s *RunSlot[T]) Get(e *Env, key string, fn func() (T, error)) (T, error) {
	v, err := e.once(slotKey{s, key}, func() (any, error) { return fn() })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}
