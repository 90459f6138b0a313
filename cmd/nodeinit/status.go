package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/operr"
)

func init() {
	register("status", "show slots, boot entries with their tries, the ledger and persisted files", runStatus)
}

// statusReport is what `nodeinit status -json` prints.
type statusReport struct {
	Booted    string            `json:"booted_slot,omitempty"`
	Ledger    *boot.Ledger      `json:"ledger,omitempty"`
	Entries   []boot.EntryState `json:"entries"`
	Rollback  *boot.Rollback    `json:"rollback,omitempty"`
	Persisted []string          `json:"persisted"`
	Snapshots []string          `json:"snapshots,omitempty"`
	Problems  []string          `json:"problems,omitempty"`
	// LastUninstall is how this machine's disks were erased by the last
	// uninstall, from the EFI variable it left (boot.UninstallVar).
	LastUninstall *boot.UninstallRecord `json:"last_uninstall,omitempty"`
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	esp := fs.String("esp", defaultESP, "mounted ESP directory")
	config := fs.String("config", defaultConfig, "mounted node-config directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("status", fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "status takes flags only, e.g. nodeinit status --json")
	}
	if _, err := os.Stat(*esp); err != nil {
		return operr.Wrap(err, "status: ESP directory "+*esp, "pass -esp DIR where NODE-ESP is mounted", "")
	}
	var r statusReport
	problem := func(err error) { r.Problems = append(r.Problems, err.Error()) }
	r.Booted, _ = bootedSlot()
	var err error
	if r.Ledger, err = boot.ReadLedger(boot.DirFS(*esp)); err != nil {
		problem(err)
	}
	if r.Entries, err = boot.Entries(boot.DirFS(*esp)); err != nil {
		problem(err)
	}
	if r.Booted != "" {
		if r.Rollback, err = boot.DetectRollback(r.Booted, r.Entries, r.Ledger); err != nil {
			problem(err)
		}
	}
	if r.Persisted, err = nodeconfig.Persisted(*config); err != nil {
		problem(err)
	}
	if r.Snapshots, err = nodeconfig.Snapshots(*config); err != nil {
		problem(err)
	}
	if v, err := boot.OpenEFIVars(); err == nil {
		if r.LastUninstall, err = boot.ReadUninstallRecord(v); err != nil {
			problem(err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	printStatus(stdout, r)
	if len(r.Problems) > 0 {
		return errors.New("status: some parts could not be read (see problems above)")
	}
	return nil
}

func printStatus(w io.Writer, r statusReport) {
	if r.Booted != "" {
		fmt.Fprintf(w, "booted slot: %s\n", r.Booted)
	}
	if l := r.Ledger; l != nil {
		fmt.Fprintf(w, "install: %s  active slot: %s\n", l.InstallID, l.Active)
		for _, s := range []string{"a", "b"} {
			rec := l.Slot(s)
			fmt.Fprintf(w, "slot %s: %-7s version %-12s image %s written %s\n", s, rec.State,
				dash(rec.Version), dash(rec.Image), dash(rec.WrittenAt.Format("2006-01-02 15:04:05Z")))
		}
		if l.Last != nil {
			fmt.Fprintf(w, "last action: %s slot %s at %s %s\n", l.Last.Action, dash(l.Last.Slot),
				l.Last.Time.Format("2006-01-02 15:04:05Z"), l.Last.Detail)
		}
		for _, rb := range l.Rollbacks {
			fmt.Fprintf(w, "rollback %s: %s -> %s: %s\n", rb.Time.Format("2006-01-02 15:04:05Z"), rb.From, rb.To, rb.Reason)
		}
		if l.FromBackup {
			fmt.Fprintln(w, "note: ledger.json was damaged; read from ledger.json.bak")
		}
	}
	fmt.Fprintln(w, "boot entries (first boots by default):")
	for _, e := range r.Entries {
		state := "blessed"
		switch {
		case e.Bad():
			state = fmt.Sprintf("BAD (0 tries left, %d done)", e.TriesDone)
		case e.Counting:
			state = fmt.Sprintf("on trial (%d tries left, %d done)", e.TriesLeft, e.TriesDone)
		}
		fmt.Fprintf(w, "  %-20s slot %s version %-10s %s\n", e.File, e.Slot, e.Version, state)
	}
	if r.Rollback != nil {
		fmt.Fprintf(w, "rollback not yet recorded: %s -> %s: %s\n", r.Rollback.From, r.Rollback.To, r.Rollback.Reason)
	}
	if u := r.LastUninstall; u != nil {
		var disks []string
		for _, d := range u.Disks {
			disks = append(disks, d.Disk+" erase="+d.Mode)
		}
		fmt.Fprintf(w, "last uninstall: %s: %s\n", u.Time.Format("2006-01-02 15:04:05Z"), strings.Join(disks, ", "))
	}
	fmt.Fprintf(w, "persisted: %s\n", dash(strings.Join(r.Persisted, " ")))
	if len(r.Snapshots) > 0 {
		fmt.Fprintf(w, "config snapshots: %s\n", strings.Join(r.Snapshots, " "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func dash(s string) string {
	if s == "" || strings.HasPrefix(s, "0001-01-01") {
		return "-"
	}
	return s
}
