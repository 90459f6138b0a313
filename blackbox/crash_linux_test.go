package blackbox

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/crash"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/stages"
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
	// destroysFirst, when set, says why this action leaves states where nothing
	// boots (reinstall wipes the old install before it writes the new one):
	// those are counted and reported as the open gap against invariant 1, and
	// must each be finished by running the same command line again.
	destroysFirst string
}

// errNothingBoots is what a check returns for a state where nothing boots.
var errNothingBoots = errors.New("nothing boots")

func crashFull() bool { return os.Getenv("NODEINIT_CRASH_FULL") == "1" }

// crashSample is how many states per scenario get the re-run in `make test`.
const crashSample = 6

func runCrashScenario(t *testing.T, sc crashScenario) {
	runCrashScenarioFn(t, sc, nil)
}

// runCrashScenarioFn records act instead of sc.line's action when act is set.
func runCrashScenarioFn(t *testing.T, sc crashScenario, act func(e *env, m *machine)) {
	if testing.Short() {
		t.Skip("the crash-point harness runs in make test and make crashtest, not -short")
	}
	e := newEnv(t)
	img := e.newDisk("disk.img")
	bundles := sc.prepare(e, img)
	line := expand(sc.line, "", bundles)
	pristine := filepath.Join(e.dir, "prepared.img")
	if err := crash.CopySparse(pristine, img); err != nil {
		t.Fatal(err)
	}

	m := e.record(img, 512)
	if act != nil {
		act(e, m)
	} else if res := e.apply(m, m.name, expand(sc.line, m.name, bundles)); res.err != nil {
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
	judge(t, img, after)
	opts := crash.Options{Base: base, Dir: e.dir}
	if !crashFull() {
		// make test: every crash point, fewer combinations at each.
		opts.DropWindow, opts.MaxTears = 4, 1
	}
	en := crash.New(log, opts)
	var broken []failure
	var states []*stateCopy
	started := time.Now()
	n, nextSample, unbootable := 0, 0, 0
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
		if errors.Is(err, errNothingBoots) && sc.destroysFirst != "" {
			unbootable++
			err = nil
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
	if act == nil {
		broken = append(broken, ioErrors(e, in, sc, pristine, line, writes, before, after)...)
	}
	t.Logf("crash points: %s: %d ops (%d writes, %d flushes, %d EFI), %d crash points, %d disk states checked (%d duplicates skipped, %d beyond the bounds), %d re-run; %d broke an invariant; %.1fs",
		sc.name, len(log.Ops), writes, flushes, efi, en.Stats.Points, en.Stats.States, en.Stats.Duplicates, en.Stats.Omitted, rerun, len(broken), checked.Seconds())
	fmt.Printf("CRASHPOINTS %s points=%d states=%d rerun=%d broken=%d\n", sc.name, en.Stats.Points, en.Stats.States, rerun, len(broken))
	if sc.destroysFirst != "" {
		t.Logf("open gap: %s: %d of %d states boot nothing (%s); every re-run tried finished the job", sc.name, unbootable, en.Stats.States, sc.destroysFirst)
		fmt.Printf("UNBOOTABLE %s states=%d of=%d reason=%q\n", sc.name, unbootable, en.Stats.States, sc.destroysFirst)
	}
	for i, f := range broken {
		if i == 10 {
			t.Errorf("… and %d more", len(broken)-10)
			break
		}
		t.Errorf("state %s: %v", f.state, f.err)
	}
}

type failure struct {
	state string
	err   error
}

// ioErrors makes write k of the action fail with EIO, for a spread of k
// (every k with NODEINIT_CRASH_FULL=1), each on a fresh copy of the prepared
// disk. The run must end in an operator error that names the disk, the disk
// must still satisfy the scenario's invariants, and running the same command
// line again with the disk healthy must finish the job.
func ioErrors(e *env, in *inspector, sc crashScenario, pristine, line string, writes int, before, after nodeView) []failure {
	var out []failure
	step := max(1, writes/crashSample)
	if crashFull() {
		step = 1
	}
	tried := 0
	for k := 1; k <= writes; k += step {
		tried++
		img := filepath.Join(e.dir, "eio.img")
		if err := crash.CopySparse(img, pristine); err != nil {
			e.t.Fatal(err)
		}
		m := e.record(img, 512)
		m.FailWrite(k, true)
		res := e.apply(m, m.name, strings.ReplaceAll(line, "{disk}", m.name))
		m.FailWrite(0, false)
		if err := m.Close(); err != nil {
			e.t.Fatal(err)
		}
		name := fmt.Sprintf("EIO at write %d", k)
		d := operr.Describe(res.err)
		switch {
		case res.err == nil:
			out = append(out, failure{name, fmt.Errorf("the action succeeded although write %d failed", k)})
			continue
		case operr.Of(res.err) == nil || d.Fix == "":
			out = append(out, failure{name, fmt.Errorf("not an operator error with a fix: %v", res.err)})
			continue
		case !strings.Contains(d.Message, "/dev/"+m.name):
			out = append(out, failure{name, fmt.Errorf("the error does not name the disk /dev/%s: %s", m.name, d.Message)})
			continue
		}
		v, err := in.inspect(img)
		if err == nil {
			err = sc.check(v, before, after)
		}
		if errors.Is(err, errNothingBoots) && sc.destroysFirst != "" {
			err = nil // the re-run below must finish the job
		}
		if err != nil {
			out = append(out, failure{name, fmt.Errorf("%w; view: %s", err, v)})
			continue
		}
		if sc.rerunDone != nil {
			if err := rerunState(e, in, &stateCopy{path: img, state: name, before: v}, line, sc.rerunDone); err != nil {
				out = append(out, failure{name + " (re-run)", err})
			}
		}
	}
	e.t.Logf("I/O errors: %s: EIO injected at %d of %d writes; %d broke an invariant", sc.name, tried, writes, len(out))
	fmt.Printf("EIO %s tried=%d writes=%d broken=%d\n", sc.name, tried, writes, len(out))
	return out
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
	l, err := testloop.New(c.path, "-P")
	if err != nil {
		return err
	}
	defer l.Detach()
	// What the boot kernel's partition scan would show (this host has none);
	// a disk with no GPT left has nothing to add.
	exec.Command("partx", "-a", l.Dev).Run()
	name := filepath.Base(l.Dev)
	res := e.apply(&linuxdev.Machine{}, name, strings.ReplaceAll(line, "{disk}", name))
	if err := l.Detach(); err != nil {
		return err
	}
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
	case c.before.boots == "" && done(v) == nil:
		// The crash came after the job's last disk write (an uninstall's erase
		// record in the firmware, say): the disk is as the job leaves it, and
		// the re-run rightly says there is nothing left to do.
		return nil
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
	return installedWith(e, img, "", rels...)
}

// installedWith is installed with more kernel arguments on the install's line.
func installedWith(e *env, img, args string, rels ...release) []string {
	var bundles []string
	for _, r := range rels {
		bundles = append(bundles, e.bundle(r))
	}
	m := e.record(img, 512)
	res := e.apply(m, m.name, "install storage_init=/dev/"+m.name+" nodeinit.image="+bundles[0]+" "+args+" "+vols+" hostname=old.example.com")
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
		if maps.Equal(sameIdentity(live), sameIdentity(w)) {
			return nil
		}
	}
	return fmt.Errorf("config %q is none of the expected", live)
}

// machineIDLine is a valid /etc/machine-id file.
var machineIDLine = regexp.MustCompile(`^[0-9a-f]{32}\n$`)

// sameIdentity is the config with a valid machine ID's value blanked: every
// seeding makes a new random one, so a run that seeds again (an EIO case's
// own run, a re-run) has the same config as the recorded one but its own ID.
func sameIdentity(c map[string]string) map[string]string {
	id, ok := c["etc/machine-id"]
	if !ok || !machineIDLine.MatchString(id) {
		return c
	}
	out := maps.Clone(c)
	out["etc/machine-id"] = "<a valid machine ID>"
	return out
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

// migration is the config migration of the 1.1 release.
var migration = []image.Migration{{Op: image.OpSet, Path: "/etc/migrated", Value: "yes\n"}}

// upgradeCheck: the old image or the new one boots, never a mix or nothing,
// and the config is the old one (or will be: a migration under way is undone
// from its snapshot by the boot) or the new one, with the new image only.
func upgradeCheck(old, new string) func(v, before, after nodeView) error {
	return func(v, before, after nodeView) error {
		if err := bootsOneOf(v, old, new); err != nil {
			return err
		}
		if v.boots+"/"+v.version == new {
			return configIs(v, after.liveConfig())
		}
		if configIs(v, before.liveConfig()) == nil {
			return nil
		}
		if v.ledger != nil && v.ledger.Last != nil && v.ledger.Last.Action == stages.ActionMigrating {
			if snap := v.snapshot(before.version); maps.Equal(snap, before.liveConfig()) {
				return nil // the boot of the old slot restores this snapshot
			}
			return fmt.Errorf("a migration was under way but the snapshot %q is not the old config: %q", before.version, v.snapshot(before.version))
		}
		return fmt.Errorf("the old image boots with a config that is neither the old nor the new: %q", v.liveConfig())
	}
}

func TestCrashUpgradeAToB(t *testing.T) {
	runCrashScenario(t, crashScenario{
		name: "upgrade a→b with config migration",
		prepare: func(e *env, img string) []string {
			return installed(e, img, release{version: "1.0", fillerMiB: 2}, release{version: "1.1", fillerMiB: 2, migrations: migration})
		},
		line:      "upgrade nodeinit.image={b2}",
		check:     upgradeCheck("a/1.0", "b/1.1"),
		rerunDone: func(v nodeView) error { return bootsOneOf(v, "b/1.1") },
	})
}

func TestCrashUpgradeBToA(t *testing.T) {
	runCrashScenario(t, crashScenario{
		name: "upgrade b→a",
		prepare: func(e *env, img string) []string {
			b := installed(e, img, release{version: "1.0", fillerMiB: 2}, release{version: "1.1", fillerMiB: 2}, release{version: "1.2", fillerMiB: 2})
			e.upgradeAndBless(img, b[1], "b")
			return b
		},
		line:      "upgrade nodeinit.image={b3}",
		check:     upgradeCheck("b/1.1", "a/1.2"),
		rerunDone: func(v nodeView) error { return bootsOneOf(v, "a/1.2") },
	})
}

// upgradeAndBless upgrades the disk to bundle and blesses the new slot, as the
// node's first good boot of it would.
func (e *env) upgradeAndBless(img, bundle, slot string) {
	e.upgrade(img, bundle, func(m *machine) {
		e.onESP(m, func(esp boot.FS) error { return boot.MarkSlot(esp, slot, true, time.Unix(1700000100, 0)) })
	})
}

// upgrade upgrades the disk image to bundle, then runs after (when set) on
// the same machine.
func (e *env) upgrade(img, bundle string, after func(m *machine)) {
	m := e.record(img, 512)
	if res := e.apply(m, m.name, "upgrade nodeinit.image="+bundle); res.err != nil {
		e.t.Fatalf("prepare: upgrade: %v\n%s", res.err, res.out)
	}
	if after != nil {
		after(m)
	}
	if err := m.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// onESP runs fn on the ESP of the machine's disk, read and written in-process
// through the device edge as the stages do.
func (e *env) onESP(m *machine, fn func(esp boot.FS) error) {
	e.t.Helper()
	espPath := m.showPartitions(e.t)[disk.LabelESP]
	if espPath == "" {
		e.t.Fatal("the disk has no NODE-ESP partition")
	}
	b, err := m.OpenBlock(espPath, 512)
	if err != nil {
		e.t.Fatal(err)
	}
	defer b.Close()
	esp, err := boot.OpenFAT(b)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := fn(esp); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

func TestCrashUninstall(t *testing.T) {
	runCrashScenario(t, crashScenario{
		name: "uninstall",
		prepare: func(e *env, img string) []string {
			return installed(e, img, release{version: "1.0", fillerMiB: 2})
		},
		line: "uninstall storage_init=/dev/{disk}",
		// Uninstall makes the disk unbootable on purpose; on the way it must
		// never boot anything but the whole old image.
		check: func(v, before, after nodeView) error {
			if v.boots == "" {
				return nil
			}
			return bootsOneOf(v, "a/1.0")
		},
		rerunDone: func(v nodeView) error {
			if len(v.parts) > 0 || v.boots != "" {
				return fmt.Errorf("the uninstall left partitions %v", slices.Collect(maps.Keys(v.parts)))
			}
			return nil
		},
	})
}

// TestCrashReinstall reinstalls over a working install, with and without
// keeping data. The layout is the disk's, so the reinstall runs in place: the
// new image goes into slot b while slot a keeps booting, and the config is
// the old one (restored from its snapshot by a boot of slot a) or the new one.
func TestCrashReinstall(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name, arg := "reinstall", ""
		if keep {
			name, arg = "reinstall keeping data", " nodeinit.keep=data"
		}
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			runCrashScenario(t, crashScenario{
				name: name,
				prepare: func(e *env, img string) []string {
					return installed(e, img, release{version: "1.0", fillerMiB: 2}, release{version: "2.0", fillerMiB: 2})
				},
				line:      "reinstall storage_init=/dev/{disk} nodeinit.image={b2} " + vols + " hostname=new.example.com" + arg,
				check:     upgradeCheck("a/1.0", "b/2.0"),
				rerunDone: func(v nodeView) error { return bootsOneOf(v, "b/2.0") },
			})
		})
	}
}

// onTrial prepares a disk with 1.0 installed and upgraded to 1.1, whose slot b
// is on trial (node-b+3.conf).
func onTrial(e *env, img string) []string {
	b := installed(e, img, release{version: "1.0", fillerMiB: 2}, release{version: "1.1", fillerMiB: 2})
	e.upgrade(img, b[1], nil)
	return b
}

func TestCrashBless(t *testing.T) {
	runCrashScenarioFn(t, crashScenario{
		name:    "bless",
		prepare: onTrial,
		check:   func(v, before, after nodeView) error { return bootsOneOf(v, "b/1.1") },
	}, func(e *env, m *machine) {
		e.onESP(m, func(esp boot.FS) error { return boot.MarkSlot(esp, "b", true, time.Unix(1700000200, 0)) })
	})
}

// TestCrashBootCountsATryDown records what one boot of an entry on trial
// writes: systemd-boot's rename of node-b+3.conf to node-b+2-1.conf (made here
// with the same FAT code, since the firmware's own writes cannot be recorded),
// then the ledger update of the boot step.
func TestCrashBootCountsATryDown(t *testing.T) {
	runCrashScenarioFn(t, crashScenario{
		name:    "a boot that counts a try down",
		prepare: onTrial,
		check:   func(v, before, after nodeView) error { return bootsOneOf(v, "b/1.1") },
	}, func(e *env, m *machine) {
		e.onESP(m, func(esp boot.FS) error {
			if err := esp.Rename("loader/entries/node-b+3.conf", "loader/entries/node-b+2-1.conf"); err != nil {
				return err
			}
			l, err := boot.ReadLedger(esp)
			if err != nil {
				return err
			}
			if err := l.SetActive("b"); err != nil {
				return err
			}
			l.RecordAction(time.Unix(1700000300, 0), "boot", "b", "")
			return l.Write(esp)
		})
	})
}

// judge asks independent tools about a finished run's disk: sgdisk validates
// the GPT, fsck.vfat the ESP and e2fsck the config filesystem; a disk with no
// partitions left (uninstall) must have nothing that blkid or wipefs finds.
func judge(t *testing.T, img string, v nodeView) {
	t.Helper()
	if len(v.parts) == 0 {
		if out, _ := exec.Command("wipefs", "-n", img).CombinedOutput(); strings.TrimSpace(string(out)) != "" {
			t.Errorf("wipefs still finds signatures:\n%s", out)
		}
		if out, err := exec.Command("blkid", "-p", img).CombinedOutput(); err == nil {
			t.Errorf("blkid still finds something: %s", out)
		}
		return
	}
	if out := run(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	for label, tool := range map[string][]string{disk.LabelESP: {"fsck.vfat", "-n"}, disk.LabelConfig: {"e2fsck", "-fn"}} {
		p, ok := v.parts[label]
		if !ok {
			t.Errorf("no %s partition", label)
			continue
		}
		part := filepath.Join(t.TempDir(), label+".img")
		copyRange(t, img, part, p.StartByte, p.SizeBytes)
		run(t, tool[0], append(tool[1:], part)...)
		os.Remove(part)
	}
}
