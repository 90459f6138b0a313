package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

func TestUpgradeBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no image"},
		{[]string{"--image", "/x", "extra"}, `unexpected argument "extra"`},
		{[]string{"--image", "/x", "--tries", "-1"}, "--tries -1 is negative"},
	} {
		var out, errw bytes.Buffer
		err := runUpgrade(tc.args, &out, &errw)
		if err == nil || !strings.Contains(err.Error(), tc.want) || operr.Describe(err).Fix == "" {
			t.Errorf("upgrade %q: err = %v, want %q with a fix", tc.args, err, tc.want)
		}
	}
}
