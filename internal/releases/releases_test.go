package releases

import (
	"reflect"
	"testing"
)

func TestNext(t *testing.T) {
	if got := Next("20250219-235959"); got != "20250220-000000" {
		t.Fatalf("Next = %s", got)
	}
}

func TestPruneKeepsNewestAndProtected(t *testing.T) {
	names := []string{"20250101-000005", "20250101-000001", "20250101-000003", "20250101-000002", "20250101-000004"}
	got := Prune(names, 2, "20250101-000001")
	want := []string{"20250101-000002", "20250101-000003"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Prune = %v, want %v", got, want)
	}
	if got := Prune(names, 5); got != nil {
		t.Fatalf("nothing to prune, got %v", got)
	}
}
