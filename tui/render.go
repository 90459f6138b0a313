package tui

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Style is how a frame is drawn on one kind of terminal.
type Style int

// The styles, from the richest to the plainest.
const (
	// StyleUnicode draws rules and bars with the line-drawing characters of
	// code page 437, which the Linux console's built-in font has, and uses
	// bold, reverse and faint.
	StyleUnicode Style = iota
	// StyleASCII draws with ASCII only and uses bold and reverse: a VT100 or
	// a serial terminal of unknown character set.
	StyleASCII
	// StylePlain is ASCII without any escape sequence: a dumb terminal gets
	// each changed frame printed whole, and the focus is shown by ">" alone.
	StylePlain
)

// StyleFor is the style for a TERM value: the Linux console and xterm-likes
// get StyleUnicode, VT100-likes and unknown terminals StyleASCII, and "dumb"
// or an empty TERM StylePlain.
func StyleFor(term string) Style {
	t := strings.ToLower(term)
	switch {
	case t == "" || t == "dumb" || t == "unknown":
		return StylePlain
	case t == "linux" || strings.HasPrefix(t, "xterm") || strings.HasPrefix(t, "screen") ||
		strings.HasPrefix(t, "tmux") || strings.HasPrefix(t, "rxvt") || strings.HasPrefix(t, "foot") ||
		strings.HasPrefix(t, "alacritty") || strings.HasPrefix(t, "kitty") || strings.HasPrefix(t, "wezterm"):
		return StyleUnicode
	}
	return StyleASCII
}

// glyphs are the characters a style draws with. The Unicode ones are all in
// code page 437, so the Linux console's default font shows them.
type glyphs struct {
	rule, full, empty, ok, fail, run, dot, up, down string
}

var (
	unicodeGlyphs = glyphs{rule: "─", full: "█", empty: "░", ok: "√", fail: "!", run: "►", dot: "·", up: "↑", down: "↓"}
	asciiGlyphs   = glyphs{rule: "-", full: "#", empty: ".", ok: "+", fail: "!", run: ">", dot: "-", up: "Up", down: "Down"}
)

func (st Style) glyphs() glyphs {
	if st == StyleUnicode {
		return unicodeGlyphs
	}
	return asciiGlyphs
}

// attr is a text attribute; several combine.
type attr uint8

const (
	attrBold attr = 1 << iota
	attrReverse
	attrFaint
)

// seg is a run of text with one set of attributes.
type seg struct {
	text string
	a    attr
}

// line is one row of the screen.
type line []seg

// width is the number of cells the line takes (every character we draw is
// one cell wide; clean makes sure of that for text from the facts).
func (l line) width() int {
	n := 0
	for _, s := range l {
		n += utf8.RuneCountInString(s.text)
	}
	return n
}

// fit cuts the line to w cells and pads it with spaces to w.
func (l line) fit(w int) line {
	var out line
	left := w
	for _, s := range l {
		if left <= 0 {
			break
		}
		r := []rune(s.text)
		if len(r) > left {
			r = r[:left]
		}
		out = append(out, seg{string(r), s.a})
		left -= len(r)
	}
	if left > 0 {
		out = append(out, seg{strings.Repeat(" ", left), 0})
	}
	return out
}

// body collects the lines of a page.
type body struct {
	lines []line
	cur   line
}

// add appends text with attributes a to the current line.
func (b *body) add(a attr, format string, args ...any) {
	b.cur = append(b.cur, seg{fmt.Sprintf(format, args...), a})
}

// text appends plain text.
func (b *body) text(format string, args ...any) { b.add(0, format, args...) }

// nl ends the current line.
func (b *body) nl() {
	b.lines = append(b.lines, b.cur)
	b.cur = nil
}

// para adds text wrapped to width w, each line indented by indent spaces.
func (b *body) para(a attr, w, indent int, text string) {
	for _, l := range wrap(text, w-indent, 0) {
		b.add(a, "%s%s", strings.Repeat(" ", indent), l)
		b.nl()
	}
}

// labeled adds text after a label of 11 columns, wrapped under itself.
func (b *body) labeled(a attr, w int, label, text string) {
	for i, l := range wrap(text, w-13, 0) {
		if i == 0 {
			b.text(" %s ", pad(label, 11))
		} else {
			b.text("%s", strings.Repeat(" ", 13))
		}
		b.add(a, "%s", l)
		b.nl()
	}
}

// wrap breaks each line of text into lines of at most w runes, at the last
// space that fits (a word longer than a line is cut), keeping the spaces
// inside each piece so columns stay aligned. A line keeps its leading
// spaces, and its continuations get hang more.
func wrap(text string, w, hang int) []string {
	w = max(w, 20)
	var out []string
	for _, raw := range strings.Split(text, "\n") {
		raw = strings.TrimRight(raw, " ")
		lead := min(len(raw)-len(strings.TrimLeft(raw, " ")), w/2)
		cont := strings.Repeat(" ", min(lead+hang, w/2))
		rest := raw
		for utf8.RuneCountInString(rest) > w {
			r := []rune(rest)
			indent := len(r) - len([]rune(strings.TrimLeft(rest, " ")))
			at := w
			for i := w; i > indent; i-- {
				if r[i] == ' ' {
					at = i
					break
				}
			}
			out = append(out, strings.TrimRight(string(r[:at]), " "))
			rest = cont + strings.TrimLeft(string(r[at:]), " ")
		}
		out = append(out, rest)
	}
	return out
}

// clean makes text from the facts (a disk model, a serial) safe to draw:
// control characters, which could move the cursor or change the terminal's
// state, and characters that may take two cells become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20, r >= 0x7f && r < 0xa0, r >= 0x1100:
			return '?'
		}
		return r
	}, s)
}

// cut shortens s to at most n runes, marking the cut with '~'.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "~"
}

// pad left-aligns s in n runes, cutting it when it is longer.
func pad(s string, n int) string {
	s = cut(s, n)
	return s + strings.Repeat(" ", n-utf8.RuneCountInString(s))
}

// encode renders lines for a terminal in style st: SGR attributes unless the
// style is plain, and only ASCII unless it is Unicode.
func encode(lines []line, st Style) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, s := range l {
			t := s.text
			if st != StyleUnicode {
				t = asciiOnly(t)
			}
			if s.a == 0 || st == StylePlain {
				b.WriteString(t)
				continue
			}
			var codes []string
			if s.a&attrBold != 0 {
				codes = append(codes, "1")
			}
			if s.a&attrFaint != 0 && st == StyleUnicode {
				codes = append(codes, "2") // a VT100 has no faint
			}
			if s.a&attrReverse != 0 {
				codes = append(codes, "7")
			}
			if len(codes) == 0 {
				b.WriteString(t)
				continue
			}
			b.WriteString("\x1b[" + strings.Join(codes, ";") + "m" + t + "\x1b[0m")
		}
	}
	return b.String()
}

// asciiOnly replaces every character outside printable ASCII with '?'.
func asciiOnly(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.Map(func(r rune) rune {
				if r >= 0x80 {
					return '?'
				}
				return r
			}, s)
		}
	}
	return s
}

// bar is a progress bar of w cells for done of total.
func bar(g glyphs, done, total int64, w int) string {
	if total <= 0 {
		return strings.Repeat(g.empty, w)
	}
	n := int(done * int64(w) / total)
	n = max(0, min(n, w))
	return strings.Repeat(g.full, n) + strings.Repeat(g.empty, w-n)
}
