// Package benchutil holds what the benchmark programs under bench/ share: the
// undo list that an interrupted bench still runs, so its mounts, loop devices,
// servers and backing files do not outlive it.
package benchutil

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
)

// undo is what an interrupted bench must still undo, run newest first.
var undo struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// AtInterrupt registers fn to run if the bench is interrupted and returns a
// func that runs it now, once, and unregisters it: the normal path's cleanup.
func AtInterrupt(fn func()) func() {
	undo.Lock()
	defer undo.Unlock()
	if undo.fns == nil {
		undo.fns = map[int]func(){}
	}
	id := undo.next
	undo.next++
	undo.fns[id] = fn
	return func() {
		undo.Lock()
		f, ok := undo.fns[id]
		delete(undo.fns, id)
		undo.Unlock()
		if ok {
			f()
		}
	}
}

// UndoOnSignal runs what is registered, newest first, on SIGINT or SIGTERM,
// says so on stderr with the bench's name and what was removed, then exits
// with status 130.
func UndoOnSignal(name, removed string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		undo.Lock()
		ids := make([]int, 0, len(undo.fns))
		for id := range undo.fns {
			ids = append(ids, id)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(ids)))
		for _, id := range ids {
			undo.fns[id]()
		}
		undo.Unlock()
		fmt.Fprintf(os.Stderr, "%s: %v: %s removed\n", name, sig, removed)
		os.Exit(130)
	}()
}
