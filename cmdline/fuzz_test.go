package cmdline

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every accepted line re-parses from its
// canonical form (with secrets revealed) to the same Params, and that String never shows a
// secret. Seeded from the golden command lines.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	for _, txt := range files {
		f.Add(readLine(f, txt))
	}
	f.Add(`a"b c"d -- "x y" --`)
	f.Add("install\tstorage_init=/dev/sda\vBOOTIF=link\f")
	f.Fuzz(func(t *testing.T, line string) {
		p, err := Parse(line)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned params with an error")
			}
			return
		}
		checkRoundTrip(t, p)
		for _, s := range []Secret{p.AdminPW, p.RootPW} {
			if s != "" && strings.Contains(strings.Join(p.Warnings, " "), s.Reveal()) {
				t.Fatalf("a warning shows a secret")
			}
		}
	})
}
