package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// pos is a 1-based line and column in shipit.toml.
type pos struct{ Line, Col int }

func (p pos) before(q pos) bool {
	return p.Line < q.Line || (p.Line == q.Line && p.Col < q.Col)
}

// A path addresses a value in the document: table keys, and array indices
// encoded by idx (they start with a NUL byte, which a TOML key cannot
// contain unescaped and which no key of ours uses).
type path []string

func idx(i int) string     { return "\x00" + strconv.Itoa(i) }
func isIdx(s string) bool  { return strings.HasPrefix(s, "\x00") }
func (p path) key() string { return strings.Join(p, "\x01") }
func (p path) append(s ...string) path {
	q := make(path, 0, len(p)+len(s))
	return append(append(q, p...), s...)
}

// String renders the path for messages: stages.prod.hosts[0].address.
func (p path) String() string {
	var b strings.Builder
	for _, s := range p {
		if isIdx(s) {
			b.WriteString("[" + s[1:] + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(s))
	}
	return b.String()
}

// table renders the path as a TOML table header without array indices:
// [app], [[stages.prod.hosts]].
func (p path) table() string {
	var parts []string
	for _, s := range p {
		if !isIdx(s) {
			parts = append(parts, quoteKey(s))
		}
	}
	h := strings.Join(parts, ".")
	if len(p) > 0 && isIdx(p[len(p)-1]) {
		return "[[" + h + "]]"
	}
	return "[" + h + "]"
}

func quoteKey(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(s)
		}
	}
	return s
}

// docIndex maps paths to positions and back. It is built from go-toml's
// parser AST, because decode errors carry a position but (for keys inside
// inline tables) not always the full path, and validation errors need the
// position of a key or table the decoder has forgotten.
type docIndex struct {
	keys    map[string]pos // path -> position of the key (or of a header's key part)
	vals    map[string]pos // path -> position of the value
	tables  map[string]pos // header path -> position of its '['
	headers map[pos]path   // position of a header's first key part -> the header's full path
	keyAt   map[pos]path   // key position -> path
	valAt   map[pos]path   // value position -> path
	present map[string]bool
	scalars map[string]scalar // path -> kind and data of the value written there
	all     []entry           // every recorded position, for prefix lookups
}

// scalar is a TOML value: its kind and, for a scalar, its data (an
// integer's digits as written, a string's content).
type scalar struct {
	kind unstable.Kind
	data string
}

type entry struct {
	p   path
	pos pos
}

// buildIndex parses data; on a syntax error it returns what it has so far.
func buildIndex(data []byte) *docIndex {
	ix := &docIndex{
		keys: map[string]pos{}, vals: map[string]pos{}, tables: map[string]pos{}, headers: map[pos]path{},
		keyAt: map[pos]path{}, valAt: map[pos]path{}, present: map[string]bool{},
		scalars: map[string]scalar{},
	}
	var p unstable.Parser
	p.Reset(data)
	at := func(n *unstable.Node) pos {
		if n == nil || n.Raw.Length == 0 {
			return pos{}
		}
		s := p.Shape(n.Raw).Start
		return pos{s.Line, s.Column}
	}
	arrays := map[string]int{} // resolved array-table path -> element count
	var current path

	// resolve turns the key parts of a header into a path, inserting the
	// current index of every array table it passes through.
	resolve := func(parts []string, positions []pos) path {
		var out path
		for i, part := range parts {
			out = out.append(part)
			ix.recordKey(out, positions[i])
			if i < len(parts)-1 {
				if n, ok := arrays[out.key()]; ok {
					out = out.append(idx(n - 1))
				}
			}
		}
		return out
	}

	var walkValue func(at path, v *unstable.Node)
	var keyValue func(base path, kv *unstable.Node)
	keyValue = func(base path, kv *unstable.Node) {
		it := kv.Key()
		full := base
		for it.Next() {
			full = full.append(string(it.Node().Data))
			ix.recordKey(full, at(it.Node()))
		}
		walkValue(full, kv.Value())
	}
	walkValue = func(at0 path, v *unstable.Node) {
		if vp := at(v); vp.Line > 0 {
			ix.vals[at0.key()] = vp
			if _, dup := ix.valAt[vp]; !dup {
				ix.valAt[vp] = at0
			}
			ix.all = append(ix.all, entry{at0, vp})
		}
		ix.present[at0.key()] = true
		ix.scalars[at0.key()] = scalar{v.Kind, string(v.Data)}
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				if it.Node().Kind == unstable.KeyValue {
					keyValue(at0, it.Node())
				}
			}
		case unstable.Array:
			it := v.Children()
			i := 0
			for it.Next() {
				if it.Node().Kind == unstable.Comment {
					continue
				}
				walkValue(at0.append(idx(i)), it.Node())
				i++
			}
		}
	}

	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var parts []string
			var positions []pos
			it := e.Key()
			for it.Next() {
				parts = append(parts, string(it.Node().Data))
				positions = append(positions, at(it.Node()))
			}
			if len(parts) == 0 {
				continue
			}
			current = resolve(parts, positions)
			// The decoder reports an unknown header at its first key part:
			// keep the whole header there, not just that part.
			ix.headers[positions[0]] = current
			if e.Kind == unstable.ArrayTable {
				n := arrays[current.key()] + 1
				arrays[current.key()] = n
				current = current.append(idx(n - 1))
			}
			hp := headerPos(data, positions[0])
			ix.tables[current.key()] = hp
			ix.present[current.key()] = true
			ix.all = append(ix.all, entry{current, hp})
		case unstable.KeyValue:
			keyValue(current, e)
		}
	}
	sort.SliceStable(ix.all, func(i, j int) bool { return ix.all[i].pos.before(ix.all[j].pos) })
	return ix
}

func (ix *docIndex) recordKey(p path, at pos) {
	if at.Line == 0 {
		return
	}
	k := p.key()
	if _, ok := ix.keys[k]; !ok {
		ix.keys[k] = at
	}
	if _, ok := ix.keyAt[at]; !ok {
		ix.keyAt[at] = p
	}
	ix.present[k] = true
	ix.all = append(ix.all, entry{p, at})
}

// headerPos finds the '[' that opens the header whose first key is at kp.
func headerPos(data []byte, kp pos) pos {
	lines := strings.SplitN(string(data), "\n", kp.Line+1)
	if kp.Line-1 >= len(lines) {
		return kp
	}
	line := lines[kp.Line-1]
	c := kp.Col - 1
	if c > len(line) {
		c = len(line)
	}
	if i := strings.IndexByte(line[:c], '['); i >= 0 {
		return pos{kp.Line, i + 1}
	}
	return kp
}

// has reports whether the document sets p (as a key, a table or a value).
func (ix *docIndex) has(p path) bool { return ix.present[p.key()] }

// posOf returns the best position for p: its table header, its key, its
// value, else the first position of anything under it, else 1:1.
func (ix *docIndex) posOf(p path) pos {
	k := p.key()
	if q, ok := ix.tables[k]; ok {
		return q
	}
	if q, ok := ix.keys[k]; ok {
		return q
	}
	if q, ok := ix.vals[k]; ok {
		return q
	}
	for _, e := range ix.all {
		if len(e.p) >= len(p) && e.p[:len(p)].key() == k {
			return e.pos
		}
	}
	return pos{1, 1}
}

// valPos is the position of p's value, else posOf(p).
func (ix *docIndex) valPos(p path) pos {
	if q, ok := ix.vals[p.key()]; ok {
		return q
	}
	return ix.posOf(p)
}
