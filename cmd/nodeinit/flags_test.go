//go:build !initramfs

package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

// testFlagSet has each kind of flag the subcommands use: a string, a boolean and
// a repeatable value.
func testFlagSet() (*flag.FlagSet, *string, *bool, *stringList) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "")
	insecure := fs.Bool("insecure", false, "")
	var list stringList
	fs.Var(&list, "append", "")
	return fs, key, insecure, &list
}

func TestParseFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		key      string
		insecure bool
		list     []string
		pos      []string
	}{
		{"flags first", []string{"--key", "K", "DIR"}, "K", false, nil, []string{"DIR"}},
		{"flags last", []string{"DIR", "--key", "K"}, "K", false, nil, []string{"DIR"}},
		{"flags between", []string{"A", "-key=K", "B", "--insecure", "C"}, "K", true, nil, []string{"A", "B", "C"}},
		{"a boolean takes no value", []string{"--insecure", "DIR"}, "", true, nil, []string{"DIR"}},
		{"a boolean set false inline", []string{"DIR", "--insecure=false"}, "", false, nil, []string{"DIR"}},
		{"a value that looks like a flag", []string{"DIR", "--key", "-K"}, "-K", false, nil, []string{"DIR"}},
		{"repeatable in order", []string{"--append", "a", "DIR", "--append", "b"}, "", false, []string{"a", "b"}, []string{"DIR"}},
		{"-- ends the flags", []string{"--key", "K", "--", "DIR", "--insecure", "-x"}, "K", false, nil, []string{"DIR", "--insecure", "-x"}},
		{"-- as a flag's value", []string{"--key", "--", "DIR"}, "--", false, nil, []string{"DIR"}},
		{"a lone - is an argument", []string{"-", "--key", "K"}, "K", false, nil, []string{"-"}},
		{"no arguments", nil, "", false, nil, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, key, insecure, list := testFlagSet()
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
			if *key != tc.key || *insecure != tc.insecure || !reflect.DeepEqual([]string(*list), tc.list) {
				t.Errorf("parseFlags(%q): key %q insecure %v append %q, want %q %v %q", tc.args, *key, *insecure, *list, tc.key, tc.insecure, tc.list)
			}
			if got := fs.Args(); !reflect.DeepEqual(got, tc.pos) {
				t.Errorf("parseFlags(%q): arguments %q, want %q", tc.args, got, tc.pos)
			}
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"DIR", "--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"DIR", "--key"}, "flag needs an argument: -key"},
		{[]string{"DIR", "--insecure=maybe"}, "invalid boolean value"},
	} {
		fs, _, _, _ := testFlagSet()
		err := parseFlags(fs, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "test: ") {
			t.Errorf("parseFlags(%q): err = %v, want %q named after the command", tc.args, err, tc.want)
		}
		if fix := operr.Describe(err).Fix; !strings.Contains(fix, "nodeinit test -h") {
			t.Errorf("parseFlags(%q): fix %q does not point at -h", tc.args, fix)
		}
	}
	for _, args := range [][]string{{"-h"}, {"DIR", "-h"}, {"DIR", "--help"}} {
		fs, _, _, _ := testFlagSet()
		if err := parseFlags(fs, args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("parseFlags(%q) = %v, want flag.ErrHelp", args, err)
		}
	}
}
