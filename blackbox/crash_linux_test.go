package blackbox

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/crash"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/operr"
)

// The crash-point harness. Each scenario prepares a disk, records one action
// through the recorder, and then, for every write and flush boundary of that
// run, builds each disk a power cut there can leave (crash.Enumerator: the
// durable prefix, every unflushed write kept alone or dropped, all kept, and
// the last write torn at 512 and 4096 bytes). On each it checks:
//
//  1. booting it finds a complete, verified image: the old or the new, never a
//     mix and never nothing (an install onto a blank disk may leave nothing yet);
//  2. the config is wholly the old or wholly the new, or the ledger says a
//     migration was under way and the old snapshot is whole (the boot restores it);
//  3. running the same command line again on it finishes the job or refuses with
//     an operator error, and never destroys more than the action would.
//
// Invariant 3 runs a whole action per state, so `make test` tries it on a
// bounded, evenly spread sample of states (crashSample); NODEINIT_CRASH_FULL=1
// (`make crashtest`) tries it on every state.

// crashScenario is one recorded action.
type crashScenario struct {
	name string
	// prepare builds the disk image the action starts from and returns the
	// bundles whose images may boot.
	prepare func(e *env, img string) (bundles []string)
	// line is the action's command line; {disk} and {b1}, {b2}… are replaced.
	line string
	// check judges one state's view against the disk before and after the
	// recorded run: invariants 1 and 2.
	check func(v, before, after nodeView) error
	// rerunDone says what a state must look like after the re-run finished
	// (invariant 3); nil skips the re-run.
	rerunDone func(v nodeView) error
}

func crashFull() bool { return os.Getenv("NODEINIT_CRASH_FULL") == "1" }

// crashSample is how many states per scenario get the re-run in `make test`.
const crashSample = 6

func runCrashScenario(t *testing.T, sc crashScenario) {
	if testing.Short() {
		t.Skip("the crash-point harness runs in make test and make crashtest, not -short")
	}
	e := newEnv(t)
	img := e.newDisk("disk.img")
	bundles := sc.prepare(e, img)
	line := expand(sc.line, "", bundles)

	m := e.record(img, 512)
	res := e.apply(m, m.name, expand(sc.line, m.name, bundles))
	if res.err != nil {
		t.Fatalf("the recorded run failed: %v\n%s", res.err, res.out)
	}
	log := m.Log()
	writes, flushes, efi := log.Counts()
	base := m.Base()

	in, err := newInspector(512, t.TempDir(), bundles...)
	if err != nil {
		t.Fatal(err)
	}
	before, err := in.inspect(base)
	if err != nil {
		t.Fatal(err)
	}
	after, err := in.inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.check(after, before, after); err != nil {
		t.Fatalf("the finished run itself fails the check: %v; view: %s", err, after)
	}
	opts := crash.Options{Base: base, Dir: e.dir}
	if !crashFull() {
		// make test: every crash point, fewer combinations at each.
		opts.DropWindow, opts.MaxTears = 4, 1
	}
	en := crash.New(log, opts)
	type failure struct {
		state string
		err   error
	}
	var broken []failure
	var states []*stateCopy
	started := time.Now()
	n, nextSample := 0, 0
	for st, err := range en.States() {
		if err != nil {
			t.Fatal(err)
		}
		n++
		in.key = func(off, n int64) string { return regionKey(log, st, off, n) }
		p, err := st.Materialize()
		if err != nil {
			t.Fatal(err)
		}
		v, err := in.inspect(p)
		if err == nil {
			err = sc.check(v, before, after)
		}
		if err != nil {
			broken = append(broken, failure{st.String(), fmt.Errorf("%w; view: %s", err, v)})
			continue
		}
		if sc.rerunDone != nil && (crashFull() || st.Point >= nextSample) {
			nextSample = st.Point + max(1, len(log.Ops)/crashSample)
			c, err := keepState(e, p, st.String())
			if err != nil {
				t.Fatal(err)
			}
			c.before = v
			states = append(states, c)
		}
	}
	checked := time.Since(started)
	in.key = nil
	rerun := 0
	for _, c := range states {
		rerun++
		if err := rerunState(e, in, c, line, sc.rerunDone); err != nil {
			broken = append(broken, failure{c.state + " (re-run)", err})
		}
		os.Remove(c.path)
	}
	t.Logf("crash points: %s: %d ops (%d writes, %d flushes, %d EFI), %d crash points, %d disk states checked (%d duplicates skipped, %d beyond the bounds), %d re-run; %d broke an invariant; %.1fs",
		sc.name, len(log.Ops), writes, flushes, efi, en.Stats.Points, en.Stats.States, en.Stats.Duplicates, en.Stats.Omitted, rerun, len(broken), checked.Seconds())
	fmt.Printf("CRASHPOINTS %s points=%d states=%d rerun=%d broken=%d\n", sc.name, en.Stats.Points, en.Stats.States, rerun, len(broken))
	for i, f := range broken {
		if i == 10 {
			t.Errorf("… and %d more", len(broken)-10)
			break
		}
		t.Errorf("state %s: %v", f.state, f.err)
	}
}

type stateCopy struct {
	path, state string
	before      nodeView
}

func keepState(e *env, p, state string) (*stateCopy, error) {
	dst := filepath.Join(e.dir, "state-"+strconv.Itoa(len(state))+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".img")
	if err := crash.CopySparse(dst, p); err != nil {
		return nil, err
	}
	return &stateCopy{path: dst, state: state}, nil
}

// rerunState attaches the state to a plain loop device and runs the same
// command line on it through linuxdev.
func rerunState(e *env, in *inspector, c *stateCopy, line string, done func(nodeView) error) error {
	out, err := exec.Command("losetup", "-f", "--show", "-P", c.path).Output()
	if err != nil {
		return fmt.Errorf("losetup: %w", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	name := filepath.Base(loop)
	res := e.apply(&linuxdev.Machine{}, name, strings.ReplaceAll(line, "{disk}", name))
	exec.Command("losetup", "-d", loop).Run()
	v, err := in.inspect(c.path)
	if err != nil {
		return err
	}
	if res.err == nil {
		if err := done(v); err != nil {
			return fmt.Errorf("after the re-run: %w; view: %s", err, v)
		}
		return nil
	}
	// A refusal must be a clear one, on a disk that boots, and leave it booting
	// what it booted.
	switch {
	case operr.Of(res.err) == nil:
		return fmt.Errorf("the re-run failed without an operator error: %v", res.err)
	case c.before.boots == "":
		return fmt.Errorf("nothing boots, and the re-run refused to finish the job: %v", res.err)
	case v.boots != c.before.boots || v.version != c.before.version:
		return fmt.Errorf("the refused re-run changed what boots: %s → %s (%v)", c.before, v, res.err)
	}
	return nil
}

// expand fills the placeholders of a scenario's command line.
func expand(line, disk string, bundles []string) string {
	if disk == "" {
		disk = "{disk}"
	}
	line = strings.ReplaceAll(line, "{disk}", disk)
	for i, b := range bundles {
		line = strings.ReplaceAll(line, "{b"+strconv.Itoa(i+1)+"}", b)
	}
	return line
}

// installed prepares a disk holding an install of the first bundle.
func installed(e *env, img string, rels ...release) []string {
	var bundles []string
	for _, r := range rels {
		bundles = append(bundles, e.bundle(r))
	}
	m := e.record(img, 512)
	res := e.apply(m, m.name, "install storage_init=/dev/"+m.name+" nodeinit.image="+bundles[0]+" "+vols+" hostname=old.example.com")
	if res.err != nil {
		e.t.Fatalf("prepare: install: %v\n%s", res.err, res.out)
	}
	if err := m.Close(); err != nil {
		e.t.Fatal(err)
	}
	return bundles
}

func bootsOneOf(v nodeView, want ...string) error {
	got := v.boots + "/" + v.version
	for _, w := range want {
		if got == w {
			return nil
		}
	}
	return fmt.Errorf("boots %q, want one of %q", got, want)
}

func configIs(v nodeView, wants ...map[string]string) error {
	live := v.liveConfig()
	for _, w := range wants {
		if maps.Equal(live, w) {
			return nil
		}
	}
	return fmt.Errorf("config %q is none of the expected", live)
}

func TestCrashInstallBlank(t *testing.T) {
	runCrashScenario(t, crashScenario{
		name: "install onto a blank disk",
		prepare: func(e *env, img string) []string {
			return []string{e.bundle(release{version: "1.0", fillerMiB: 2})}
		},
		line: "install storage_init=/dev/{disk} nodeinit.image={b1} " + vols + " hostname=node1.example.com",
		check: func(v, before, after nodeView) error {
			if v.boots == "" {
				return nil // nothing bootable yet is allowed on a blank disk
			}
			if err := bootsOneOf(v, "a/1.0"); err != nil {
				return err
			}
			return configIs(v, after.liveConfig())
		},
		rerunDone: func(v nodeView) error { return bootsOneOf(v, "a/1.0") },
	})
}

// regionKey names the content of [off, off+n) in state st without reading it:
// the base image, then the last durable write that overlaps the range (writes
// are in order, and the durable prefix only grows), then the unflushed writes
// the state keeps that overlap it, and a torn write's cut.
func regionKey(log *crash.Log, st *crash.State, off, n int64) string {
	overlaps := func(op crash.Op) bool {
		return op.Kind == crash.OpWrite && op.Off < off+n && off < op.Off+op.Len
	}
	var b strings.Builder
	last := -1
	for i := st.Durable - 1; i >= 0; i-- {
		if overlaps(log.Ops[i]) {
			last = i
			break
		}
	}
	fmt.Fprintf(&b, "%d", last)
	for _, w := range st.Persisted() {
		if overlaps(log.Ops[w]) {
			fmt.Fprintf(&b, ",%d", w)
		}
	}
	if st.Kind == crash.Torn && overlaps(log.Ops[st.Write]) {
		fmt.Fprintf(&b, ",t%d@%d", st.Write, st.TornBytes)
	}
	return b.String()
}
