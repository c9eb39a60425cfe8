package secrets

import (
	"reflect"
	"testing"
)

func TestScrubEnv(t *testing.T) {
	in := []string{"PATH=/bin", EnvKey + "=AGE-SECRET-KEY-1X", EnvKey + "_FILE=/k", "X" + EnvKey + "=y", EnvKey + "=", "HOME=/h"}
	want := []string{"PATH=/bin", EnvKey + "_FILE=/k", "X" + EnvKey + "=y", "HOME=/h"}
	if got := ScrubEnv(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("ScrubEnv = %q, want %q", got, want)
	}
}
