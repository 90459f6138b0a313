package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/nodeinit/nodeinit/nodeconfig"
)

func init() {
	register("persist", "keep files across reboots and upgrades (oVirt Node persist); -list shows them", runPersist)
	register("unpersist", "stop keeping files; the image's version returns at the next boot", runUnpersist)
}

func runPersist(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("persist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", defaultConfig, "mounted node-config directory")
	root := fs.String("root", "/", "root the paths are read from")
	list := fs.Bool("list", false, "list persisted paths")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list || fs.NArg() == 0 {
		paths, err := nodeconfig.Persisted(*config)
		if err != nil {
			return err
		}
		for _, p := range paths {
			fmt.Fprintln(stdout, p)
		}
		return nil
	}
	if err := nodeconfig.Persist(*config, *root, fs.Args()...); err != nil {
		return err
	}
	for _, p := range fs.Args() {
		fmt.Fprintf(stdout, "persisted %s\n", p)
	}
	return nil
}

func runUnpersist(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("unpersist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", defaultConfig, "mounted node-config directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("unpersist", "no path given", "nodeinit unpersist /etc/FILE…; nodeinit persist --list shows what is persisted")
	}
	if err := nodeconfig.Unpersist(*config, fs.Args()...); err != nil {
		return err
	}
	for _, p := range fs.Args() {
		fmt.Fprintf(stdout, "unpersisted %s (the image's version returns at the next boot)\n", p)
	}
	return nil
}
