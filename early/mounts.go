package early

import (
	"fmt"
	"os"
)

// Creator is one self-describing early step (u-root libinit's interface): it creates itself
// and prints itself, so a failure names the exact step.
type Creator interface {
	Create() error
	fmt.Stringer
}

// Step is one row of an early table: a Creator, whether its failure is tolerated, and an
// optional path that must exist for the step to run (efivarfs only on EFI machines).
type Step struct {
	Creator
	Optional bool
	When     string
}

// StepResult is what happened to one Step.
type StepResult struct {
	Step    string
	Skipped bool
	Err     error
}

// String renders the result as one log line.
func (r StepResult) String() string {
	switch {
	case r.Skipped:
		return "skip " + r.Step
	case r.Err != nil:
		return fmt.Sprintf("FAIL %s: %v", r.Step, r.Err)
	}
	return "ok   " + r.Step
}

// RunSteps runs the table in order. It stops at the first failing step that is not optional
// and returns its error, wrapped with the step; the results cover every step attempted.
func RunSteps(steps []Step) ([]StepResult, error) {
	var results []StepResult
	for _, s := range steps {
		if s.When != "" {
			if _, err := os.Stat(s.When); err != nil {
				results = append(results, StepResult{Step: s.String(), Skipped: true})
				continue
			}
		}
		err := s.Create()
		results = append(results, StepResult{Step: s.String(), Err: err})
		if err != nil && !s.Optional {
			return results, fmt.Errorf("early step %s: %w", s, err)
		}
	}
	return results, nil
}
