// Command fetch downloads the Debian kernel, OVMF and boot loaders the QEMU tests use into
// $NODEINIT_CACHE (default /var/cache/nodeinit) with apt-get download, and prints their paths.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

func main() {
	dir := flag.String("cache", vm.DefaultCacheDir(), "cache directory")
	flag.Parse()
	a, err := vm.Fetch(context.Background(), *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
	fmt.Print(a.Describe())
}
