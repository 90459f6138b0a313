package deb

import (
	"fmt"
	"strings"
)

// Dep is one alternative of a dependency: a package name, optionally with a
// version relation (<<, <=, =, >=, >>) and version.
type Dep struct {
	Name    string
	Op      string
	Version string
}

func (d Dep) String() string {
	if d.Op == "" {
		return d.Name
	}
	return fmt.Sprintf("%s (%s %s)", d.Name, d.Op, d.Version)
}

// Matches reports whether a package called name at version meets d. A
// versioned d is never met by an unversioned Provides (version "").
func (d Dep) Matches(name, version string) bool {
	if name != d.Name {
		return false
	}
	if d.Op == "" {
		return true
	}
	if version == "" {
		return false
	}
	c := CompareVersions(version, d.Version)
	switch d.Op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}

// ParseDepends parses a Depends-style field: comma-separated groups of
// "|"-separated alternatives, each "name[:arch] [(op version)]". Architecture
// qualifiers (:any, :native, :amd64) are dropped: the image has one
// architecture. The old relations < and > mean <= and >=, as in dpkg.
func ParseDepends(field string) ([][]Dep, error) {
	field = strings.Join(strings.Fields(field), " ")
	if field == "" {
		return nil, nil
	}
	var out [][]Dep
	for _, group := range strings.Split(field, ",") {
		var alts []Dep
		for _, alt := range strings.Split(group, "|") {
			d, err := parseDep(strings.TrimSpace(alt))
			if err != nil {
				return nil, err
			}
			alts = append(alts, d)
		}
		out = append(out, alts)
	}
	return out, nil
}

func parseDep(s string) (Dep, error) {
	if i := strings.IndexAny(s, "[<"); i >= 0 && !strings.Contains(s[:i], "(") {
		s = strings.TrimSpace(s[:i]) // build profiles and arch lists belong to source packages
	}
	name, rest, _ := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	name, _, _ = strings.Cut(name, ":")
	if name == "" || strings.ContainsAny(name, " )") {
		return Dep{}, fmt.Errorf("dependency %q has no package name", s)
	}
	d := Dep{Name: name}
	if rest == "" {
		return d, nil
	}
	rel, ok := strings.CutSuffix(strings.TrimSpace(rest), ")")
	if !ok {
		return Dep{}, fmt.Errorf("dependency %q: missing \")\"", s)
	}
	rel = strings.TrimSpace(rel)
	for _, op := range []string{"<<", "<=", ">=", ">>", "=", "<", ">"} {
		if v, ok := strings.CutPrefix(rel, op); ok {
			d.Op, d.Version = op, strings.TrimSpace(v)
			break
		}
	}
	switch d.Op {
	case "<":
		d.Op = "<="
	case ">":
		d.Op = ">="
	case "":
		return Dep{}, fmt.Errorf("dependency %q: relation must be one of <<, <=, =, >=, >>", s)
	}
	if d.Version == "" {
		return Dep{}, fmt.Errorf("dependency %q: relation without a version", s)
	}
	return d, nil
}

// provided is one name a package offers: its own, or one from Provides.
type provided struct{ name, version string }

// provides lists the names p satisfies dependencies on.
func (p Package) provides() []provided {
	out := []provided{{p.Name, p.Version}}
	groups, err := ParseDepends(p.Provides)
	if err != nil {
		return out
	}
	for _, g := range groups {
		for _, d := range g {
			v := ""
			if d.Op == "=" {
				v = d.Version
			}
			out = append(out, provided{d.Name, v})
		}
	}
	return out
}

// satisfies reports whether p meets d, by its name or a Provides.
func (p Package) satisfies(d Dep) bool {
	for _, pr := range p.provides() {
		if d.Matches(pr.name, pr.version) {
			return true
		}
	}
	return false
}
