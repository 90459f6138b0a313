package tui

import (
	"strings"
	"unicode/utf8"
)

// input is a one-line text field. Typed text goes at the end and Backspace
// takes the last character off: no cursor movement, which a serial line makes
// slow and a dumb terminal impossible.
type input struct {
	value  []rune
	secret bool // shown as '*', one per character, never as typed
	max    int  // at most this many characters (0: 256)
}

// String is the value as typed.
func (f *input) String() string { return string(f.value) }

// Set replaces the value.
func (f *input) Set(s string) { f.Clear(); f.value = []rune(s) }

// Clear empties the field, overwriting what it held first (a password's
// runes do not linger in this slice; see HashPassword for the limits).
func (f *input) Clear() {
	for i := range f.value {
		f.value[i] = 0
	}
	f.value = f.value[:0]
}

// Empty reports whether nothing is typed.
func (f *input) Empty() bool { return len(f.value) == 0 }

// key applies a key press to the field and reports whether it used it.
func (f *input) key(k Key) bool {
	switch {
	case k.Name == "backspace" || k.Name == "ctrl+h":
		if len(f.value) > 0 {
			f.value[len(f.value)-1] = 0
			f.value = f.value[:len(f.value)-1]
		}
		return true
	case k.Name == "ctrl+u":
		f.Clear()
		return true
	case k.Text != "":
		limit := f.max
		if limit == 0 {
			limit = 256
		}
		for _, r := range k.Text {
			if r >= 0x20 && r != 0x7f && len(f.value) < limit {
				f.value = append(f.value, r)
			}
		}
		return true
	}
	return false
}

// show is what the field displays in w cells: '*' per character of a secret,
// and the end of a value too long for the box.
func (f *input) show(w int) string {
	s := string(f.value)
	if f.secret {
		s = strings.Repeat("*", len(f.value))
	}
	s = clean(s)
	if n := utf8.RuneCountInString(s); n > w {
		s = "~" + string([]rune(s)[n-w+1:])
	}
	return s
}
