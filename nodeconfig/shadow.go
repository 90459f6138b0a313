package nodeconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func osMode(m uint32) os.FileMode { return os.FileMode(m) }

// ApplyShadow merges the shadow fragments stored in configDir
// (/etc/nodeinit/shadow.d/<user>) into newRoot's /etc/shadow, adding the user
// to /etc/passwd and /etc/group first when the image lacks it (admin gets the
// first free uid/gid from 1000, home /home/<user>, shell /bin/sh). It is
// idempotent, and a no-op without fragments. Hashes are never logged.
func ApplyShadow(configDir, newRoot string) error {
	frags, err := filepath.Glob(filepath.Join(configDir, ShadowDir, "*"))
	if err != nil || len(frags) == 0 {
		return err
	}
	sort.Strings(frags)
	for _, f := range frags {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("apply shadow: %w", err)
		}
		line := strings.TrimSpace(string(data))
		user, _, ok := strings.Cut(line, ":")
		if !ok || user != filepath.Base(f) || strings.Count(line, ":") != 8 {
			return fmt.Errorf("apply shadow: fragment %s is not one shadow(5) line for user %s", filepath.Base(f), filepath.Base(f))
		}
		if err := ensureUser(newRoot, user); err != nil {
			return fmt.Errorf("apply shadow for %s: %w", user, err)
		}
		if err := replaceLine(filepath.Join(newRoot, "etc/shadow"), user, line, 0o640); err != nil {
			return fmt.Errorf("apply shadow for %s: %w", user, err)
		}
	}
	return nil
}

func ensureUser(root, user string) error {
	passwd := filepath.Join(root, "etc/passwd")
	lines, _ := readLines(passwd)
	if findLine(lines, user) >= 0 {
		return nil
	}
	groupPath := filepath.Join(root, "etc/group")
	groups, _ := readLines(groupPath)
	id := 1000
	for usedID(lines, id) || usedID(groups, id) {
		id++
	}
	ids := strconv.Itoa(id)
	if findLine(groups, user) < 0 {
		if err := replaceLine(groupPath, user, user+":x:"+ids+":", 0o644); err != nil {
			return err
		}
	}
	return replaceLine(passwd, user, user+":x:"+ids+":"+ids+":Node administrator:/home/"+user+":/bin/sh", 0o644)
}

func usedID(lines []string, id int) bool {
	for _, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(id) {
			return true
		}
	}
	return false
}

func readLines(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n"), nil
}

func findLine(lines []string, user string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, user+":") {
			return i
		}
	}
	return -1
}

// replaceLine sets the line for user in a colon file, appending it if absent.
func replaceLine(p, user, line string, perm os.FileMode) error {
	lines, err := readLines(p)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if st, err := os.Stat(p); err == nil {
		perm = st.Mode().Perm()
	}
	if i := findLine(lines, user); i >= 0 {
		if lines[i] == line {
			return nil
		}
		lines[i] = line
	} else {
		lines = append(lines, line)
	}
	if len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	return writeFileAtomic(p, []byte(strings.Join(lines, "\n")+"\n"), perm)
}
