package main

import (
	"context"
	"errors"

	"github.com/nodeinit/nodeinit/early"
)

// runEngine parses the command line, probes the machine, plans and runs the stages.
func runEngine(ctx context.Context, env *early.Env) error {
	return errors.New("engine not wired into this build yet")
}
