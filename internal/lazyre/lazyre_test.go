package lazyre

import "testing"

// TestNewCompilesOnFirstUse: New itself compiles nothing (an invalid
// expression does not panic until the first call), and every call returns
// the same compiled expression.
func TestNewCompilesOnFirstUse(t *testing.T) {
	bad := New(`(`)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the first call of an invalid expression did not panic")
			}
		}()
		bad()
	}()

	re := New(`^a+$`)
	if re() != re() {
		t.Error("two calls returned different *regexp.Regexp")
	}
	if !re().MatchString("aaa") || re().MatchString("ab") {
		t.Errorf("%s matches wrongly", re())
	}
}
