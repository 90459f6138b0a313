//go:build initramfs

package main

import (
	"fmt"
	"io"

	"github.com/nodeinit/nodeinit/operr"
)

// The initramfs build (go build -tags initramfs; see initramfs.GoBuildFlags)
// leaves out the commands only a build host runs, so they do not weigh on
// every boot. Asking this build for one says where it is.
func init() {
	for name, what := range map[string]string{
		"mkinitramfs": "build the initramfs",
		"mkmedia":     "build install media",
		"image":       "build, sign, verify, edit and compare image bundles",
	} {
		register(name, what+" (not in this build: use the full CLI)", func(args []string, stdout, stderr io.Writer) error {
			return operr.New(fmt.Sprintf("%s is not in this build of nodeinit", name),
				"this is the initramfs build (the /init of a node), which leaves out what only a build host runs",
				"run it with the full CLI on a build host: `make build` writes build/nodeinit", "")
		})
	}
}
