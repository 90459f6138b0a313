// Package tui is the installer screen: when the kernel command line leaves a
// choice open and a console is interactive, it walks the person at the
// machine through the choice and produces a kernel command line. Everything
// then goes through that line, cmdline.Parse and the one plan.Plan: the
// screen has no second path to the disks, and it writes nothing itself.
//
// # When it runs
//
// Needed says whether a command line calls for it: never with
// nodeinit.interactive=0, always with nodeinit.interactive=1, and otherwise
// only for an install whose disk is open (no storage_init, as on the media's
// "Install or Upgrade" entry, or a bare storage_init, bare BUS or glob that
// matches several eligible disks). A complete line never waits at a screen.
//
// /init (package initproc) starts it after the probe when Needed says so: it
// prompts on every console= console, runs Session.Choose on the first where
// Enter is pressed, plans the Result's line again and refuses it unless it
// gives Result.Plan, then feeds Session.Follow the engine's events. The text
// output is held off that console while the screen is up.
//
// # Pages
//
//  1. Welcome: the machine, the medium's image, the install found, and the
//     actions its state allows, worded as oVirt Node worded them: Install;
//     "Upgrade 1.0 to 1.1", "Downgrade 1.1 to 1.0" or "Reinstall 1.0"
//     (the inactive slot is written, config and data are kept: upgrade, with
//     nodeinit.force for the last two); Reinstall and wipe; Uninstall; Run
//     stateless; Rescue shell. A major-version jump is explained, not
//     offered, and so is any action plan.Plan refuses.
//  2. Disk: every disk with its name, transport, size, model, serial, WWN,
//     by-id name and content (blank, nodeinit and its version, old oVirt
//     Node, foreign filesystems, LVM, md, LUKS). Disks that can never be
//     targets are greyed with disk.Ineligible's reason, or too small. Enter
//     picks the install disk, Space adds app-data disks (storage_init's
//     further disks). A disk with foreign content is chosen only by typing
//     its serial: the consent of nodeinit.wipe=<serial>.
//  3. Layout: the storage_vol sizes, each with its default on that disk, and
//     a fit check on every key press that says how many MiB are missing.
//  4. Admin password: typed twice, shown as '*', hashed in RAM with SHA-512
//     crypt (HashPassword); only the hash goes on the line. An optional SSH
//     public key, which no kernel argument carries (Result.SSHKey).
//  5. Network and identity: host name, the interface (with MAC and link),
//     DHCP or a static address, prefix, gateway and DNS, a VLAN, and the
//     management server.
//  6. Plan: Blueprint.WriteText of the line, the text `nodeinit plan`
//     prints, scrollable, with the action's button and Back. Nothing is
//     written before its button.
//  7. Progress: the plan's stages as stages.Event values report them, with
//     a bar, MB/s and the time left (Session.Follow).
//  8. Done: what was installed where, and the kernel command line that
//     repeats it unattended, the password as adminpw=<redacted> (consoles are
//     logged).
//
// Upgrades, downgrades, reinstalls keeping data and uninstall go from the
// welcome page straight to the plan; stateless asks for the password and the
// network. The pages are functions of a State: Key, Event and Resize change
// it and do no I/O, View and Screen draw it, so each page is tested without
// a terminal; Session and Run put it on one.
//
// # Terminals
//
// It works at 80×24 and more on the Linux console (tty1) and on a serial
// console (ttyS0 at 115200, TERM vt100 or linux) with the arrow keys, Tab,
// Shift-Tab, Enter, Space and Esc (Ctrl-N and Ctrl-P for Down and Up where
// there are no arrows). StyleFor picks how to draw: the line-drawing
// characters of code page 437 (which the Linux console's own font has) for
// linux and xterm-likes, plain ASCII for a VT100 and unknown terminals, and
// for a dumb terminal ASCII without any escape sequence, each changed frame
// printed whole. Text from the facts is cleaned of control characters, so a
// disk's model cannot move the cursor.
//
// # Library
//
// Drawn with bubbletea v2 (charm.land/bubbletea/v2): its Elm architecture is
// this package's shape (a model, Update, View), it reads keys from any
// io.Reader and writes to any io.Writer with TERM given, so the same code
// runs on tty1, ttyS0 and a test's pty, and its renderer redraws only what
// changed, which a 115200-baud line needs. tview draws a tree of stateful
// widgets that is harder to test page by page; huh's forms own their
// navigation and would bring lipgloss and bubbles. No styling library is used:
// the pages draw their own lines. The password hash is go-crypt's shacrypt
// (github.com/go-crypt/crypt), a maintained crypt(3) implementation; the
// GehirnInc/crypt package has had no change since 2023.
package tui
