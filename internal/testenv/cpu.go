package testenv

import (
	"syscall"
	"testing"
	"time"
)

// ReportCPU starts measuring the CPU time the process uses (the
// benchmark's work plus the garbage collector's) and returns the function
// that reports it per operation as cpu-ns/op: unlike ns/op, it does not
// count time spent waiting for a CPU on a busy machine. Use it as
// `defer testenv.ReportCPU(b)()` after the benchmark's setup.
func ReportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}
