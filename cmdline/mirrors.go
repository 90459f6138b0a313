package cmdline

import (
	"net/url"
	"strings"
)

// MirrorSeparator joins the mirrors of nodeinit.image=: a comma directly
// before the next mirror's http:// or https://, as in
// nodeinit.image=http://a/bundle/,http://b/bundle/. A comma survives the
// kernel command line, PXE, iPXE and GRUB configs unquoted, and is not one of
// the characters a URL needs escaped; only ",http://" and ",https://" split,
// so a comma elsewhere in a URL stays part of it. A template value can never
// add a mirror: netboot.CheckValue refuses the '/' a scheme needs.
const MirrorSeparator = ","

// SplitMirrors splits an image spec into its mirrors, in order; a spec that
// is not a list is the one element.
func SplitMirrors(spec string) []string {
	var out []string
	for {
		i := nextMirror(spec)
		if i < 0 {
			return append(out, spec)
		}
		out = append(out, spec[:i])
		spec = spec[i+len(MirrorSeparator):]
	}
}

// nextMirror is the index of the separator before the next mirror, or -1.
func nextMirror(s string) int {
	best := -1
	for _, scheme := range []string{"http://", "https://"} {
		if i := strings.Index(s, MirrorSeparator+scheme); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// validMirrors reports whether every mirror of spec is an http(s) URL with a host.
func validMirrors(spec string) bool {
	for _, m := range SplitMirrors(spec) {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return false
		}
	}
	return true
}
