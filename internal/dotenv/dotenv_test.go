package dotenv

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"empty", "", nil},
		{"blank and comments", "\n  \n# c\n   # indented comment\n\n", nil},
		{"simple", "A=1\nB=two\n", []Entry{{"A", "1"}, {"B", "two"}}},
		{"no final newline", "A=1", []Entry{{"A", "1"}}},
		{"crlf", "A=1\r\nB=2\r\n", []Entry{{"A", "1"}, {"B", "2"}}},
		{"bom", "\uFEFFA=1\n", []Entry{{"A", "1"}}},
		{"export", "export A=1\nexport\tB='x y'\n", []Entry{{"A", "1"}, {"B", "x y"}}},
		{"key named export", "export=1\nexport_X=2\n", []Entry{{"export", "1"}, {"export_X", "2"}}},
		{"spaces around", "  A = 1  \n", []Entry{{"A", "1"}}},
		{"empty values", "A=\nB=''\nC=\"\"\n", []Entry{{"A", ""}, {"B", ""}, {"C", ""}}},
		{"equals in value", "A=a=b==\n", []Entry{{"A", "a=b=="}}},
		{"inline comment", "A=x # comment\nB=x#not\nC=x\t#tab-kept\n", []Entry{{"A", "x"}, {"B", "x#not"}, {"C", "x\t#tab-kept"}}},
		{"unquoted dollar literal", "A=$HOME ${X}\n", []Entry{{"A", "$HOME ${X}"}}},
		{"unquoted backslash literal", `A=C:\path\n\` + "\n", []Entry{{"A", `C:\path\n\`}}},
		{"single literal", `A='$HOME \n "x" #y'` + "\n", []Entry{{"A", `$HOME \n "x" #y`}}},
		{"single escaped quote", `A='it\'s'` + "\n", []Entry{{"A", "it's"}}},
		{"single double backslash kept", `A='a\\b'` + "\n", []Entry{{"A", `a\\b`}}},
		{"single multiline", "A='l1\nl2\n'\nB=2\n", []Entry{{"A", "l1\nl2\n"}, {"B", "2"}}},
		{"double escapes", `A="a\nb\tc\\d\"e\$f\rg"` + "\n", []Entry{{"A", "a\nb\tc\\d\"e$f\rg"}}},
		{"double unknown escape kept", `A="\q\'"` + "\n", []Entry{{"A", `\q\'`}}},
		// compose-go's octal escape, and its quirk of dropping the 0 when
		// the digits are not three octal ones.
		{"double octal", `A="\0101\0\0089"` + "\n", []Entry{{"A", `A\\089`}}},
		{"double dollar literal", `A="$HOME"` + "\n", []Entry{{"A", "$HOME"}}},
		{"double multiline", "A=\"l1\nl2\"\n", []Entry{{"A", "l1\nl2"}}},
		{"comment after quote", "A='x' # c\nB=\"y\"\t\n", []Entry{{"A", "x"}, {"B", "y"}}},
		{"leading space kept in quotes", "A='  x  '\n", []Entry{{"A", "  x  "}}},
		{"duplicate last wins first position", "A=1\nB=2\nA=3\n", []Entry{{"A", "3"}, {"B", "2"}}},
		{"unicode", "A=ünï ✓\n", []Entry{{"A", "ünï ✓"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"bare key", "A=1\nSECRET\n", 2, "expected KEY=VALUE"},
		{"yaml style", "A: 1\n", 1, "expected KEY=VALUE"},
		{"space in key", "\n\nMY SECRET=1\n", 3, "invalid variable name"},
		{"digit first", "1A=1\n", 1, "invalid variable name"},
		{"dash", "SECRET-B=1\n", 1, "invalid variable name"},
		{"empty key", "=1\n", 1, "invalid variable name"},
		{"unterminated single", "A=1\nB='SECRET\nC=2\n", 2, "unterminated '-quoted value"},
		{"unterminated double", "A=\"abc\\\"\n", 1, `unterminated "-quoted value`},
		{"text after quote", "A='x'SECRET\n", 1, "unexpected text after the closing quote"},
		{"text after multiline quote", "A='x\ny' SECRET\n", 2, "unexpected text after the closing quote"},
		{"line counts multiline", "A='1\n2\n3'\nB\n", 4, "expected KEY=VALUE"},
		{"nul", "A=a\x00b\n", 1, "NUL"},
		{"invalid utf8", "A=\xff\n", 1, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %v, want *Error", tt.in, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("Parse(%q) error = line %d %q, want line %d containing %q", tt.in, pe.Line, pe.Msg, tt.line, tt.msg)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q quotes the file's content", err)
			}
			if !strings.HasPrefix(err.Error(), "line ") || pe.Hint() == "" {
				t.Errorf("error %q: want \"line N: …\" and a hint", err)
			}
		})
	}
}

func TestValidKey(t *testing.T) {
	for k, want := range map[string]bool{
		"A": true, "_": true, "a_b9": true, "DATABASE_URL": true,
		"": false, "9A": false, "A-B": false, "A.B": false, "A B": false, "É": false, "A=": false,
	} {
		if got := ValidKey(k); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestSerializeForms(t *testing.T) {
	// The chosen form is part of the contract verified against real compose
	// in e2e/dotenv_test.go; pin it so a change is deliberate.
	tests := []struct{ value, line string }{
		{"", "K=\n"},
		{"abc-1.2_x/y:z@h+%,=", "K=abc-1.2_x/y:z@h+%,=\n"},
		{"a b", "K='a b'\n"},
		{"$HOME", "K='$HOME'\n"},
		{"it's", `K='it\'s'` + "\n"},
		{"l1\nl2", "K='l1\nl2'\n"},
		{`\$x`, `K='\$x'` + "\n"},
		{`C:\dir\`, `K=C:\dir\` + "\n"},
		{`a\\b`, `K=a\\b` + "\n"},
		{` \ `, `K=' \ '` + "\n"},
		{` \`, `K=" \\"` + "\n"},
		{"cr\r", `K="cr\r"` + "\n"},
		{"x\\\\\n$\"", `K="x\\\\\n\$\""` + "\n"},
	}
	for _, tt := range tests {
		b, err := Serialize([]Entry{{"K", tt.value}})
		if got := string(b); err != nil || got != tt.line {
			t.Errorf("Serialize(%q) = %q, want %q", tt.value, got, tt.line)
		}
	}
}

// Serialize returns a *ValueError naming the key of an entry no env file
// can carry (invalid name, NUL, invalid UTF-8), and never panics.
func TestSerializeRefusesInvalidEntries(t *testing.T) {
	for _, e := range []Entry{{"1X", "v"}, {"A-B", "v"}, {"", "v"}, {"K\xff", "v"}, {"K", "a\x00b"}, {"K", "\xc3"}, {"K", "ok\xff\xfe"}} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Serialize(%q) panicked: %v", e, r)
				}
			}()
			out, err := Serialize([]Entry{{"OK", "fine"}, e})
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Key != e.Key || ve.Hint() == "" || out != nil {
				t.Errorf("Serialize(%q) = %q, %v; want *ValueError for key %q", e, out, err, e.Key)
			}
			if out, err := SerializeChecked([]Entry{e}); err == nil || out != nil {
				t.Errorf("SerializeChecked(%q) = %q, nil", e, out)
			}
		}()
	}
}

func TestCompatV1(t *testing.T) {
	ok := []string{"", "plain", "$HOME", "$", "${", "${x", "a}$b{", "it's\n\"x\"", `C:\dir\`, `\$x`, "a\\ b $c", "ünï"}
	for _, v := range ok {
		if err := CompatV1([]Entry{{"K", v}}); err != nil {
			t.Errorf("CompatV1(%q) = %v, want nil", v, err)
		}
	}
	bad := map[string]string{
		"${HOME}":           "expands",
		"x${A:-b}y":         "expands",
		"${}":               "expands",
		"cr\r$x":            "keeps the backslash",
		"a\\\\b $x":         "keeps the backslash",
		"line\nend\\":       "ends with a backslash",
		" trailing space\\": "ends with a backslash",
	}
	for v, why := range bad {
		err := CompatV1([]Entry{{"OK", "1"}, {"BAD", v}})
		var ve *V1Error
		if !errors.As(err, &ve) || ve.Key != "BAD" || !strings.Contains(err.Error(), why) || ve.Hint() == "" {
			t.Errorf("CompatV1(%q) = %v, want *V1Error for BAD containing %q", v, err, why)
		}
	}
}

// FuzzRoundTrip: Serialize then Parse gives back the entries for any valid
// key and any value CheckEntry accepts (any UTF-8 without NUL).
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", "a b", "it's", `"`, `\`, `\'`, `a\\`, "$HOME", "${X}", "l1\nl2", "\r\n", " #c", "ü✓", "'\\'\"\\\"$\n\r\t"} {
		f.Add("KEY", s, "K2", s+s)
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		entries := []Entry{{k1, v1}, {k2, v2}}
		if k1 == k2 {
			entries = entries[:1]
		}
		out, err := Serialize(entries)
		valid := true
		for _, e := range entries {
			valid = valid && ValidKey(e.Key) && utf8.ValidString(e.Value) && !strings.Contains(e.Value, "\x00")
		}
		if !valid {
			if err == nil {
				t.Fatalf("Serialize(%q) accepted an invalid entry", entries)
			}
			return
		}
		if err != nil {
			t.Fatalf("Serialize(%q): %v", entries, err)
		}
		got, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Serialize(%q)) = %v\nfile:\n%s", entries, err, out)
		}
		if !reflect.DeepEqual(got, entries) {
			t.Fatalf("round trip changed entries:\n in: %q\nout: %q\nfile:\n%s", entries, got, out)
		}
	})
}
