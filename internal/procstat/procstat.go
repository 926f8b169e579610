// Package procstat reads what Linux (/proc, getrusage) tells about a running process,
// for tests and benchmarks that measure the real binary.
package procstat

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WatchPeakRSS samples the process's peak resident memory (VmHWM) every
// 20 ms until done is closed, then sends the highest value seen, in bytes.
// VmHWM is the kernel's high-water mark, so only a peak reached in the
// process's last 20 ms can be missed; sampling more often would cost the
// CPUs the measured process shares. (The rusage of a child is no use for
// this: on Linux it includes the parent's memory at the time of the fork.)
func WatchPeakRSS(pid int, done <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
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
	_, rest, ok := bytes.Cut(data, []byte("VmHWM:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(string(line)), "kB")), 10, 64)
	return kb * 1024
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
