package benchutil

import (
	"path/filepath"
	"testing"
)

// TestRecordThenRead: figures appended by Record read back by name, the last of a
// name winning; without the environment variable Record writes nothing.
func TestRecordThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "figures.jsonl")
	t.Setenv(FiguresEnv, "")
	if err := Record(Figure{Name: "x", Value: 1}); err != nil {
		t.Fatal(err)
	}
	t.Setenv(FiguresEnv, path)
	for _, f := range []Figure{{Name: "a", Value: 0.5, Unit: "x"}, {Name: "b", Value: 3, Unit: "MiB", Note: "n"}, {Name: "a", Value: 0.7}} {
		if err := Record(f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadFigures(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"].Value != 0.7 || got["b"].Unit != "MiB" || got["b"].Note != "n" {
		t.Errorf("read %+v", got)
	}
}
