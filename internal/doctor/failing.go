package doctor

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// FailHint is what a DBA can do about an action of the doctor's that
// failed on node (of family, for the commands it names): it is tried
// again at growing intervals (Failing) until it works or a DBA steps in.
func FailHint(act ActionKind, node, family string) string {
	off := fmt.Sprintf("SET DOCTOR NODE %s OFF stops the tries", node)
	switch act {
	case Fence:
		return fmt.Sprintf("the doctor tries again at growing intervals; START AGENT on %s's host lets it stop the node, or stop it by hand (pg_ctl stop -m immediate); %s", node, off)
	case Failover:
		return fmt.Sprintf("the doctor tries again at growing intervals; START AGENT on %s's host if it is down, or check the master and its slaves (MONITOR HA) and run FAILOVER %s %s FORCE; %s",
			node, strings.ToUpper(family), node, off)
	}
	return fmt.Sprintf("the doctor tries again at growing intervals; check the node (MONITOR ALL, its host's agent: START AGENT); %s", off)
}

var triedRe = regexp.MustCompile(`^failed (\d+) times; the last: `)

// Tried is the detail of a journal entry whose action failed again: prev
// is its detail so far, detail the new failure's. The count is kept at its
// start ("failed 3 times; the last: …"); the entry's started and updated
// columns say when the first and the last try were.
func Tried(prev, detail string) string {
	n := 1
	if m := triedRe.FindStringSubmatch(prev); m != nil {
		if v, err := strconv.Atoi(m[1]); err == nil {
			n = v
		}
	}
	return fmt.Sprintf("failed %d times; the last: %s", n+1, detail)
}
