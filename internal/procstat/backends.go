package procstat

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat, fixed by Linux's
// ABI.
const userHZ = 100

// WatchBackendCPU measures the CPU time the local PostgreSQL's backends
// serving any of the databases dbs use from now until done is closed: it
// reads /proc every 20 ms for processes titled "postgres: USER DB …"
// (pg_restore's and pg_dump's workers and migrate's connections alike),
// counting each from the value it had at the start (0 for one that starts
// later) to the highest seen, so a backend's last ~20 ms before it exits
// may be missed, and one that lives less than 100 ms altogether (no pooled
// connection does). Parallel index builds' worker processes are titled
// otherwise and are not counted. It sends -1 when it never saw such a
// backend (PostgreSQL elsewhere, or in a container /proc does not show).
//
// The watch shares the CPUs with what it measures, so it is kept cheap:
// /proc is listed every 100 ms for new backends (one found late still
// counts from 0), a process's title is read once, and in between only the
// known backends' stat files are read (with WatchPeakRSS, 0.08 s of CPU in
// 5 s, where reading every title every 20 ms cost 0.37 s alone).
func WatchBackendCPU(dbs []string, done <-chan struct{}) <-chan time.Duration {
	w := backendWatch{dbs: dbs, backend: map[int]bool{}}
	start := w.cpu()
	out := make(chan time.Duration, 1)
	go func() {
		last := map[int]int64{}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			if i%5 == 0 {
				for pid, ticks := range w.cpu() {
					last[pid] = max(last[pid], ticks)
				}
			} else {
				for pid := range last {
					if ticks, ok := cpuTicks(pid); ok {
						last[pid] = max(last[pid], ticks)
					}
				}
			}
			select {
			case <-done:
				if len(last) == 0 && len(start) == 0 {
					out <- -1
					return
				}
				var sum int64
				for pid, ticks := range last {
					sum += ticks - start[pid]
				}
				out <- time.Duration(sum) * time.Second / userHZ
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BackendCPU returns the CPU time, in clock ticks, of every running
// backend serving one of dbs, by process id.
func BackendCPU(dbs []string) map[int]int64 {
	w := backendWatch{dbs: dbs, backend: map[int]bool{}}
	return w.cpu()
}

// backendWatch finds the backends serving dbs, remembering which
// processes are. A PostgreSQL process whose title is not set yet (just
// forked, still showing the postmaster's command line) is asked again
// next time; any other answer is kept (a process id reused during a watch,
// after Linux wrapped around, would keep the first answer).
type backendWatch struct {
	dbs     []string
	backend map[int]bool
}

func (w *backendWatch) cpu() map[int]int64 {
	out := map[int]int64{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		is, known := w.backend[pid]
		if !known {
			cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			f := strings.Fields(strings.TrimRight(string(cmd), "\x00"))
			is = len(f) >= 3 && f[0] == "postgres:" && slices.Contains(w.dbs, f[2])
			untitled := len(f) > 0 && f[0] != "postgres:" && strings.HasSuffix(f[0], "postgres")
			if !untitled {
				w.backend[pid] = is
			}
		}
		if !is {
			continue
		}
		if ticks, ok := cpuTicks(pid); ok {
			out[pid] = ticks
		}
	}
	return out
}

// cpuTicks reads the CPU time (user and system), in clock ticks, that
// process pid has used; false when it cannot be read (the process is gone).
func cpuTicks(pid int) (int64, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command in parentheses: state is the first, utime
	// the 12th and stime the 13th.
	_, rest, ok := strings.Cut(string(stat), ") ")
	if !ok {
		return 0, false
	}
	sf := strings.Fields(rest)
	if len(sf) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(sf[11], 10, 64)
	s, _ := strconv.ParseInt(sf[12], 10, 64)
	return u + s, true
}

// ProcessCPU is the CPU time (user and system) process pid has used so
// far, with the 10 ms resolution of /proc; -1 when it cannot be read.
func ProcessCPU(pid int) time.Duration {
	ticks, ok := cpuTicks(pid)
	if !ok {
		return -1
	}
	return time.Duration(ticks) * time.Second / userHZ
}
