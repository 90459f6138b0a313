package image

import (
	"testing"
)

// FuzzParseManifest feeds arbitrary bytes to the manifest reader: it must return
// a manifest that validates or an error, never panic, and never accept a
// manifest Validate refuses.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"name":"n","version":"1.0","arch":"amd64","files":[{"name":"rootfs.squashfs","size":4096,"sha256":"` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `"}]}`))
	f.Add([]byte(`{"format":1,"files":[{"name":"../x","size":-1}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if verr := m.Validate(); verr != nil {
			t.Fatalf("ParseManifest accepted a manifest Validate refuses: %v", verr)
		}
	})
}
