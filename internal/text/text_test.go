package text

import "testing"

func TestTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
		{"\n\n", 3, ""},
	} {
		if got := Tail(c.in, c.n); got != c.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"deploy", "rollback", "deploy:health"}
	if got := Closest("deplyo", cands); got != "deploy" {
		t.Errorf("Closest = %q", got)
	}
	if got := Closest("zzzzzz", cands); got != "" {
		t.Errorf("Closest of a far name = %q, want none", got)
	}
	if got := DidYouMean("Rollbak", cands); got != ` (did you mean "rollback"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
	if Distance("kitten", "sitting") != 3 {
		t.Error("Distance(kitten, sitting) != 3")
	}
}

func TestLines(t *testing.T) {
	var got []string
	w := &Lines{Emit: func(s string) { got = append(got, s) }}
	w.Write([]byte("a\r\nb"))
	w.Write([]byte("c\nd"))
	w.Close()
	w.Write([]byte("late\n"))
	if len(got) != 3 || got[0] != "a" || got[1] != "bc" || got[2] != "d" {
		t.Fatalf("lines = %q", got)
	}
}
