package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat CPU times. It is 100 on
// every mainstream Linux architecture; Go cannot query sysconf without cgo.
const clockTicks = 100

// procStatus holds the memory figures of /proc/PID/status, in kB.
type procStatus struct {
	rssKB int64 // VmRSS: resident set size now
	hwmKB int64 // VmHWM: peak resident set size
}

// readProcStatus reads VmRSS and VmHWM of process pid.
func readProcStatus(pid int) (procStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	defer f.Close()
	st := procStatus{rssKB: -1, hwmKB: -1}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return procStatus{}, fmt.Errorf("/proc/%d/status: bad %s %q", pid, name, value)
		}
		if name == "VmRSS" {
			st.rssKB = kb
		} else {
			st.hwmKB = kb
		}
	}
	if err := sc.Err(); err != nil {
		return procStatus{}, err
	}
	if st.rssKB < 0 || st.hwmKB < 0 {
		return procStatus{}, fmt.Errorf("/proc/%d/status: no VmRSS/VmHWM (kernel thread or zombie?)", pid)
	}
	return st, nil
}

// procCPU returns the user+system CPU time consumed so far by process pid,
// or -1 when pid <= 0 or it cannot be read.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may contain spaces; fields resume after
	// the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// selfCPU returns the user+system CPU time consumed so far by this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPercent expresses cpu time used over wall time as a percentage of one
// core (200% = two cores busy).
func cpuPercent(cpu, wall time.Duration) float64 {
	if wall <= 0 || cpu < 0 {
		return 0
	}
	return 100 * cpu.Seconds() / wall.Seconds()
}
