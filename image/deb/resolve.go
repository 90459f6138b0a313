package deb

import (
	"fmt"
	"sort"
	"strings"
)

// MissingError says that a dependency of Package is met neither by the image,
// nor by the packages asked for, nor by any package of the right architecture
// in the local directory.
type MissingError struct {
	Package    string // the package whose dependency is missing
	Dependency string // the dependency as written, alternatives joined by " | "
	// WrongArch lists packages of the local directory that would match but are
	// built for another architecture.
	WrongArch []string
}

func (e *MissingError) Error() string {
	msg := fmt.Sprintf("%s depends on %s, which is neither in the image nor in the local package directory", e.Package, e.Dependency)
	if len(e.WrongArch) > 0 {
		msg += " (only for another architecture: " + strings.Join(e.WrongArch, ", ") + ")"
	}
	return msg
}

// Resolve returns the packages of pool that must be installed with want so
// that every Depends and Pre-Depends of want, and of what Resolve adds, is
// met by installed, want or the additions. Of several candidates it takes the
// first alternative that pool can meet and, for it, the highest version; pool
// packages for another architecture than arch (or "all") are never taken.
// The result is in the order the packages were needed, so it is the same for
// the same inputs.
func Resolve(arch string, installed, want, pool []Package) ([]Package, error) {
	have := append(append([]Package{}, installed...), want...)
	candidates := append([]Package{}, pool...)
	sort.SliceStable(candidates, func(i, j int) bool {
		if candidates[i].Name != candidates[j].Name {
			return candidates[i].Name < candidates[j].Name
		}
		return CompareVersions(candidates[i].Version, candidates[j].Version) > 0
	})
	met := func(d Dep) bool {
		for _, p := range have {
			if p.satisfies(d) {
				return true
			}
		}
		return false
	}
	var added []Package
	queue := append([]Package{}, want...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, field := range []string{p.PreDepends, p.Depends} {
			groups, err := ParseDepends(field)
			if err != nil {
				return nil, fmt.Errorf("package %s: %w", p.Name, err)
			}
		group:
			for _, alts := range groups {
				for _, d := range alts {
					if met(d) {
						continue group
					}
				}
				var wrong []string
				for _, d := range alts {
					for _, c := range candidates {
						if !c.satisfies(d) {
							continue
						}
						if c.Arch != arch && c.Arch != "all" {
							wrong = append(wrong, fmt.Sprintf("%s %s (%s)", c.Name, c.Version, c.Arch))
							continue
						}
						c.NeededBy = p.Name
						have = append(have, c)
						added = append(added, c)
						queue = append(queue, c)
						continue group
					}
				}
				var names []string
				for _, d := range alts {
					names = append(names, d.String())
				}
				return nil, &MissingError{Package: p.Name, Dependency: strings.Join(names, " | "), WrongArch: wrong}
			}
		}
	}
	return added, nil
}
