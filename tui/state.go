package tui

import (
	"fmt"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/plan"
)

// Page is one screen of the installer.
type Page int

// The pages, in the order an install visits them.
const (
	PageWelcome Page = iota
	PageDisk
	PageLayout
	PagePassword
	PageNetwork
	PagePlan
	PageProgress
	PageDone
)

var pageTitles = map[Page]string{
	PageWelcome: "Welcome", PageDisk: "Disk", PageLayout: "Layout", PagePassword: "Admin password",
	PageNetwork: "Network and identity", PagePlan: "Plan", PageProgress: "Progress", PageDone: "Done",
}

// String is the page's title.
func (p Page) String() string { return pageTitles[p] }

// Key is one key press as the pages see it: a named key ("up", "down",
// "left", "right", "tab", "shift+tab", "enter", "esc", "backspace", "space",
// "pgup", "pgdown", "home", "end", "ctrl+c", "ctrl+u", …) or typed text in
// Text (Name empty). Space has both: Name "space" and Text " ".
type Key struct {
	Name string
	Text string
}

// ImageInfo is the image on the install medium, as the pages name it. The
// zero value means the image of the facts (plan.Facts.Image).
type ImageInfo struct {
	Name    string
	Version string
}

// State is everything the installer screen shows and has been told: the facts
// and the command line it started from, the page, and what was typed and
// chosen. Its methods do no I/O (but for the password salt's random bytes):
// Key, Event and Resize change it, View and Screen draw it, so every page is
// tested without a terminal.
type State struct {
	Facts *plan.Facts
	// Base is the command line the screen started from. Its tokens that the
	// pages do not ask about (console=, nodeinit.image=, nodeinit.events=, …)
	// are kept in the command line the screen produces.
	Base  *cmdline.Params
	Media ImageInfo
	Style Style
	// Width and Height are the terminal's size; 0 means 80×24.
	Width, Height int
	// Hash turns the admin password into its crypt(3) hash; nil is HashPassword.
	Hash func(password string) (string, error)

	Page Page
	// Finished is set when the person confirmed the plan (or chose the rescue
	// shell): Line is then the command line to run.
	Finished bool
	// Canceled is set when the person quit; nothing was written.
	Canceled bool
	// Line is the equivalent kernel command line, with the admin password as
	// its hash, once Finished.
	Line string
	// Plan is the plan of Line.
	Plan *plan.Blueprint

	offers   []Offer
	notes    []string // what the welcome page does not offer, and why
	offer    Offer    // the action chosen on the welcome page
	focus    string   // id of the focused item
	msg      string   // the status line: the last refusal
	fields   map[string]*input
	target   string   // kernel name of the install disk
	appData  []string // kernel names of the app-data disks, in order
	nic      string   // kernel name of the NIC to configure
	static   bool
	hash     string // the admin password's hash, once typed twice
	sshKey   string
	planText []string
	planErr  error
	scroll   int // the plan page's first row shown
	more     int // how far PgUp/PgDn moved a long page's window from the focus
	prog     progress
}

// NewState is the state of a screen that starts on the welcome page, for a
// machine described by f and the command line p.
func NewState(f *plan.Facts, p *cmdline.Params, media ImageInfo, style Style) *State {
	if media == (ImageInfo{}) && f.Image != nil {
		media = ImageInfo{Name: f.Image.Name, Version: f.Image.Version}
	}
	s := &State{Facts: f, Base: p, Media: media, Style: style, fields: map[string]*input{}}
	s.offers, s.notes = offers(f, p)
	s.prefill()
	s.enter(PageWelcome)
	return s
}

// field returns the text field id, making it when it does not exist yet.
func (s *State) field(id string) *input {
	f, ok := s.fields[id]
	if !ok {
		f = &input{}
		s.fields[id] = f
	}
	return f
}

// item is one thing on a page that takes the focus: a choice, a text field
// or a button.
type item struct {
	id    string
	field *input // set for a text field
}

// pageFuncs are what a page does: the items that take the focus, the body
// it draws, and for a form the check that lets the person go on (a form's
// items end with Next and Back).
type pageFuncs struct {
	items func(*State) []item
	body  func(*State, *body, int)
	done  func(*State) error // nil: not a form
}

// funcs are the page's functions.
func (p Page) funcs() pageFuncs {
	switch p {
	case PageWelcome:
		return pageFuncs{(*State).welcomeItems, (*State).welcomeBody, nil}
	case PageDisk:
		return pageFuncs{(*State).diskItems, (*State).diskBody, (*State).diskDone}
	case PageLayout:
		return pageFuncs{(*State).layoutItems, (*State).layoutBody, (*State).layoutDone}
	case PagePassword:
		return pageFuncs{(*State).passwordItems, (*State).passwordBody, (*State).passwordDone}
	case PageNetwork:
		return pageFuncs{(*State).networkItems, (*State).networkBody, (*State).networkDone}
	case PagePlan:
		return pageFuncs{(*State).planItems, (*State).planBody, nil}
	case PageProgress:
		return pageFuncs{func(*State) []item { return nil }, (*State).progressBody, nil}
	}
	return pageFuncs{func(*State) []item { return []item{{id: "finish"}} }, (*State).doneBody, nil}
}

// items are the focusable items of the current page, in focus order.
func (s *State) items() []item {
	f := s.Page.funcs()
	it := f.items(s)
	if f.done != nil {
		it = append(it, item{id: "next"}, item{id: "back"})
	}
	return it
}

// flow is the pages the chosen action visits before it runs.
func (s *State) flow() []Page {
	switch s.offer.Kind {
	case OfferInstall, OfferReinstallWipe:
		return []Page{PageWelcome, PageDisk, PageLayout, PagePassword, PageNetwork, PagePlan}
	case OfferStateless:
		return []Page{PageWelcome, PagePassword, PageNetwork, PagePlan}
	case OfferRescue:
		return []Page{PageWelcome}
	}
	return []Page{PageWelcome, PagePlan}
}

// step is the page's number in the flow, from 1, or 0 when it is not in it.
func (s *State) step() int {
	for i, p := range s.flow() {
		if p == s.Page {
			return i + 1
		}
	}
	return 0
}

// enter shows page p with its first item focused.
func (s *State) enter(p Page) {
	s.Page = p
	s.focus = ""
	switch p {
	case PageWelcome:
		s.focus = s.welcomeFocus()
	case PageDisk:
		if s.target != "" {
			s.focus = "disk:" + s.target
		}
	case PagePlan:
		s.computePlan()
		s.focus = "back" // the install starts only on a deliberate choice
	}
	if it := s.items(); s.focus == "" && len(it) > 0 {
		s.focus = it[0].id
	}
}

// forward leaves the page for the next one of the flow when the page's
// inputs are complete, or says on the status line what is missing.
func (s *State) forward() {
	if done := s.Page.funcs().done; done != nil {
		if err := done(s); err != nil {
			s.msg = err.Error()
			return
		}
	}
	fl := s.flow()
	if i := s.step(); i > 0 && i < len(fl) {
		s.enter(fl[i])
	}
}

// back returns to the previous page of the flow.
func (s *State) back() {
	if i := s.step(); i > 1 {
		s.enter(s.flow()[i-2])
	}
}

// Key applies one key press.
func (s *State) Key(k Key) {
	if s.Page == PageProgress {
		return // the install runs: nothing to choose, and quitting now would not undo it
	}
	s.msg = ""
	if k.Name == "ctrl+c" && s.Page != PageDone {
		s.Canceled = true
		return
	}
	if s.Page == PagePlan && s.scrollKey(k) {
		return
	}
	switch k.Name {
	case "pgdown", "pgup":
		_, h := s.size()
		s.more += map[string]int{"pgdown": 1, "pgup": -1}[k.Name] * max(1, h-8)
		return
	}
	s.more = 0 // a move of the focus brings the window back to it
	items := s.items()
	if len(items) == 0 {
		return
	}
	i := 0
	for j, it := range items {
		if it.id == s.focus {
			i = j
		}
	}
	cur := items[i]
	move := func(d int) { s.focus = items[(i+d+len(items))%len(items)].id }
	switch k.Name {
	case "tab", "down", "ctrl+n":
		move(1)
	case "shift+tab", "up", "ctrl+p":
		move(-1)
	case "right", "left":
		if cur.field == nil {
			move(map[string]int{"right": 1, "left": -1}[k.Name])
		}
	case "esc":
		s.back()
	case "enter":
		if cur.field != nil {
			move(1)
			return
		}
		s.activate(cur.id, false)
	case "space":
		if cur.field != nil {
			cur.field.key(k)
			return
		}
		s.activate(cur.id, true)
	default:
		if cur.field != nil {
			cur.field.key(k)
		}
	}
}

// activate acts on the item id: Enter, or Space when space is set.
func (s *State) activate(id string, space bool) {
	switch {
	case id == "next":
		s.forward()
	case id == "back":
		s.back()
	case id == "go":
		s.Finished = true
	case id == "finish":
		s.Finished = true
	case strings.HasPrefix(id, "offer:"):
		s.chooseOffer(id)
	case strings.HasPrefix(id, "disk:"):
		s.chooseDisk(strings.TrimPrefix(id, "disk:"), space)
	case strings.HasPrefix(id, "nic:"):
		s.nic = strings.TrimPrefix(id, "nic:")
	case id == "ip:dhcp", id == "ip:static":
		s.static = id == "ip:static"
	}
}

// Resize records the terminal's size.
func (s *State) Resize(w, h int) { s.Width, s.Height = w, h }

func (s *State) size() (int, int) {
	w, h := s.Width, s.Height
	if w <= 0 {
		w = 80
	}
	if h <= 0 {
		h = 24
	}
	return w, h
}

// marker is how an item starts: ">" where the focus is.
func (s *State) marker(id string) string {
	if s.focus == id {
		return ">"
	}
	return " "
}

// focusAttr is the attribute of an item: reverse video where the focus is.
func (s *State) focusAttr(id string) attr {
	if s.focus == id {
		return attrReverse
	}
	return 0
}

// button draws the buttons of a page in one line.
func (s *State) buttons(b *body, ids ...string) {
	labels := map[string]string{"next": "Next", "back": "Back", "go": s.goLabel(), "finish": "Finish"}
	for _, id := range ids {
		b.text("  %s ", s.marker(id))
		b.add(s.focusAttr(id)|attrBold, "[ %s ]", labels[id])
	}
	b.nl()
}

// lines is the page's body and the index of the focused line in it.
func (s *State) lines(w int) ([]line, int) {
	var b body
	s.Page.funcs().body(s, &b, w)
	focus := 0
	for i, l := range b.lines {
		for _, sg := range l {
			if sg.a&attrReverse != 0 {
				focus = i
			}
		}
	}
	return b.lines, focus
}

// frame is the whole screen: a title, the page's body, the status line and
// the keys.
func (s *State) frame() []line {
	w, h := s.size()
	g := s.Style.glyphs()
	title := " nodeinit installer"
	if s.Media.Version != "" {
		title += fmt.Sprintf(" %s %s %s", g.dot, clean(s.Media.Name), clean(s.Media.Version))
	}
	where := s.Page.String()
	if n := s.step(); n > 0 && s.Page != PageWelcome {
		where = fmt.Sprintf("%d/%d %s", n, len(s.flow()), s.Page)
	}
	gap := max(1, w-len([]rune(title))-len([]rune(where))-1)
	out := []line{{{title, attrBold}, {strings.Repeat(" ", gap), 0}, {where + " ", attrBold}}}
	out = append(out, line{{strings.Repeat(g.rule, w), 0}})

	status := []string{s.msg}
	if w < 80 || h < 24 {
		status = []string{fmt.Sprintf("This terminal is %dx%d; the installer needs at least 80x24.", w, h)}
	} else if s.msg != "" {
		status = wrap(s.msg, w-2, 0)
		if len(status) > 2 {
			status = []string{status[0], cut(status[1], w-3) + "~"}
		}
	}
	avail := h - 4 - len(status)
	body, focus := s.lines(w)
	start, rows := 0, avail
	if len(body) > avail {
		rows = avail - 1 // the last row says there is more
		if focus >= rows-1 {
			start = min(focus-rows+2, len(body)-rows)
		}
		start = max(0, min(start+s.more, len(body)-rows))
	}
	for i := 0; i < rows; i++ {
		var l line
		if start+i < len(body) {
			l = body[start+i]
		}
		out = append(out, l)
	}
	if rows < avail {
		var more []string
		if start > 0 {
			more = append(more, g.up+" more above")
		}
		if start+rows < len(body) {
			more = append(more, g.down+" more below")
		}
		out = append(out, line{{"   (" + strings.Join(more, ", ") + ": PgUp/PgDn)", attrFaint}})
	}
	out = append(out, line{{strings.Repeat(g.rule, w), 0}})
	for _, l := range status {
		out = append(out, line{{" " + l, attrBold}})
	}
	out = append(out, line{{" " + s.help(g), 0}})
	for i := range out {
		out[i] = out[i].fit(w)
	}
	return out
}

// help names the keys of the page.
func (s *State) help(g glyphs) string {
	ud := g.up + g.down
	if s.Style != StyleUnicode {
		ud = "Up/Down"
	}
	switch s.Page {
	case PageWelcome:
		return ud + " move  Enter choose  Ctrl-C quit"
	case PageDisk:
		return ud + " move  Enter install disk  Space app-data disk  Esc back  Ctrl-C quit"
	case PagePlan:
		return ud + " PgUp/PgDn scroll  Tab buttons  Enter choose  Esc back  Ctrl-C quit"
	case PageProgress:
		return "Installing: do not switch the machine off"
	case PageDone:
		return "Enter finish"
	}
	return ud + "/Tab move  Enter next field  Esc back  Ctrl-C quit"
}

// View is the screen for the terminal: the frame with the style's escape
// sequences (none for StylePlain).
func (s *State) View() string { return encode(s.frame(), s.Style) }

// Screen is the screen as plain text, one line per row with trailing spaces
// removed: what the golden screenshots hold. It is ASCII unless the style is
// StyleUnicode.
func (s *State) Screen() string {
	var b strings.Builder
	for _, l := range s.frame() {
		var t strings.Builder
		for _, sg := range l {
			t.WriteString(sg.text)
		}
		row := t.String()
		if s.Style != StyleUnicode {
			row = asciiOnly(row)
		}
		b.WriteString(strings.TrimRight(row, " ") + "\n")
	}
	return b.String()
}
