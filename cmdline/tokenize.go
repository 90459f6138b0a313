package cmdline

import "strings"

// isSpace is the kernel's isspace for the command line.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// Split breaks a command line into tokens the way the kernel does: whitespace separates,
// double quotes group (and are removed), an unterminated quote runs to the end of the line.
// Tokens after the first "--" are returned separately as init arguments.
// Empty tokens (a lone "") are dropped. unterminated reports an unbalanced quote.
func Split(line string) (tokens, initArgs []string, unterminated bool) {
	var cur strings.Builder
	inQuote, have := false, false
	afterDashes := false
	flush := func() {
		if !have {
			return
		}
		tok := cur.String()
		cur.Reset()
		have = false
		if tok == "" {
			return
		}
		if afterDashes {
			initArgs = append(initArgs, tok)
			return
		}
		if tok == "--" {
			afterDashes = true
			return
		}
		tokens = append(tokens, tok)
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			have = true
		case isSpace(c) && !inQuote:
			flush()
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	flush()
	return tokens, initArgs, inQuote
}

// quoteToken returns tok in a form Split reads back as tok.
func quoteToken(tok string) string {
	for i := 0; i < len(tok); i++ {
		if isSpace(tok[i]) {
			return `"` + tok + `"`
		}
	}
	return tok
}

// normKey is the lookup form of a key: ASCII lower case, '-' and '_' equivalent.
func normKey(k string) string {
	b := []byte(k)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '-':
			b[i] = '_'
		}
	}
	return string(b)
}
