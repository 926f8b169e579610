// Package procstat reads what Linux (/proc, getrusage) tells about a running process,
// for tests and benchmarks that measure the real binary.
package procstat

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WatchPeakRSS samples the process's peak resident memory (VmHWM) every few
// milliseconds until done is closed, then sends the highest value seen, in
// bytes. (The rusage of a child is no use for this: on Linux it includes
// the parent's memory at the time of the fork.)
func WatchPeakRSS(pid int, done <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v := VmHWM(pid); v > peak {
				peak = v
			}
			select {
			case <-done:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// VmHWM returns the process's peak resident memory so far in bytes, or 0
// when it cannot be read (the process is gone).
func VmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// SelfCPU is the CPU time (user and system) this process has used so far,
// or 0 when the kernel does not say.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
