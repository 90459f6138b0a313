package deb

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Paragraph is one stanza of a control file, keyed by field name as written
// (dpkg field names are case-insensitive; Get folds case).
type Paragraph map[string]string

// Get returns the field name, matched case-insensitively, or "".
func (p Paragraph) Get(name string) string {
	if v, ok := p[name]; ok {
		return v
	}
	for k, v := range p {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// ParseControl reads the paragraphs of a deb822 control file: fields
// "Name: value", continuation lines that start with a space or tab, and blank
// lines between paragraphs. Comment lines (#) are skipped.
func ParseControl(r io.Reader) ([]Paragraph, error) {
	var out []Paragraph
	cur := Paragraph{}
	last := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		switch {
		case strings.TrimSpace(t) == "":
			if len(cur) > 0 {
				out = append(out, cur)
				cur, last = Paragraph{}, ""
			}
		case strings.HasPrefix(t, "#"):
		case t[0] == ' ' || t[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("line %d: continuation line before any field", line)
			}
			cur[last] += "\n" + t
		default:
			k, v, ok := strings.Cut(t, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("line %d: %q is not a \"Field: value\" line", line, t)
			}
			last = strings.TrimSpace(k)
			cur[last] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// Package is what the resolver and the diff need to know about one binary
// package.
type Package struct {
	Name       string
	Version    string
	Arch       string // a Debian architecture (amd64, arm64, all)
	Depends    string // the raw Depends field
	PreDepends string // the raw Pre-Depends field
	Provides   string // the raw Provides field
	// File is the .deb the package comes from; empty for installed packages.
	File string
	// NeededBy names the package whose dependency made Resolve add this one.
	NeededBy string
}

// FromParagraph takes the package fields of p.
func FromParagraph(p Paragraph) Package {
	return Package{Name: p.Get("Package"), Version: p.Get("Version"), Arch: p.Get("Architecture"),
		Depends: p.Get("Depends"), PreDepends: p.Get("Pre-Depends"), Provides: p.Get("Provides")}
}

// ParseStatus reads dpkg's status database (var/lib/dpkg/status) and returns
// the packages whose Status says they are installed, in file order (dpkg
// keeps it sorted by name).
func ParseStatus(r io.Reader) ([]Package, error) {
	ps, err := ParseControl(r)
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	var out []Package
	for _, p := range ps {
		st := strings.Fields(p.Get("Status"))
		if len(st) == 3 && st[2] == "installed" && p.Get("Package") != "" {
			out = append(out, FromParagraph(p))
		}
	}
	return out, nil
}

// Arch returns the Debian architecture for a Go GOARCH (amd64 → amd64,
// 386 → i386, arm → armhf, ppc64le → ppc64el); others are the same word.
func Arch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return goarch
}
