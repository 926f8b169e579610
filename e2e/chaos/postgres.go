package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is a throwaway PostgreSQL cluster the campaign starts for the
// restart cases, so that restarting it never disturbs the developer's
// shared one. As root it runs as the postgres user (initdb refuses root),
// its data directory under /var/tmp, which that user can reach.
type cluster struct {
	bin, data, log string
	port           int
	password       string
	asPostgres     bool
}

// findPGBin finds the directory of initdb and pg_ctl the way scripts/lib.sh
// does: pg_ctl on PATH, or the newest /usr/lib/postgresql/N/bin.
func findPGBin() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// startCluster initdb's and starts a cluster on a free loopback port.
func startCluster(bin string) (*cluster, error) {
	if bin == "" {
		if bin = findPGBin(); bin == "" {
			return nil, errors.New("no PostgreSQL server binaries (initdb, pg_ctl) found")
		}
	}
	c := &cluster{bin: bin, asPostgres: os.Geteuid() == 0}
	parent := ""
	if c.asPostgres {
		parent = "/var/tmp"
	}
	c.sweep(parent)
	dir, err := os.MkdirTemp(parent, "baasmigrate-chaos-pg-")
	if err != nil {
		return nil, err
	}
	// The owner's pid lets a later campaign stop this cluster if this one
	// dies without Close (SIGKILL).
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	c.data, c.log = filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	c.password = hex.EncodeToString(pw)
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user for initdb: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "--pwfile="+pwfile, "--auth=scram-sha-256",
		"--encoding=UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	os.Remove(pwfile)
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n", c.port)
	if err := appendFile(filepath.Join(c.data, "postgresql.conf"), conf); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.data, "pg_hba.conf"), []byte("host all all 127.0.0.1/32 scram-sha-256\n"), 0o600); err != nil {
		return nil, err
	}
	if c.asPostgres {
		if out, err := exec.Command("chown", "postgres:", filepath.Join(c.data, "pg_hba.conf")).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown pg_hba.conf: %w: %s", err, out)
		}
	}
	if out, err := c.run("pg_ctl", "start", "-D", c.data, "-l", c.log, "-w", "-t", "60"); err != nil {
		c.stop()
		return nil, fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return c, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// run runs a PostgreSQL program from c.bin, as postgres when root. It
// runs in its own session (setsid), so the postmaster it starts is not in
// the campaign's process group.
func (c *cluster) run(prog string, args ...string) (string, error) {
	argv := append([]string{filepath.Join(c.bin, prog)}, args...)
	if c.asPostgres {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	cmd := exec.Command("setsid", append([]string{"--wait"}, argv...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// url is the superuser's DSN for database db.
func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", c.password, c.port, db)
}

// restart is `pg_ctl restart -m fast`: every connection is cut.
func (c *cluster) restart() error {
	if out, err := c.run("pg_ctl", "restart", "-D", c.data, "-l", c.log, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("pg_ctl restart: %w: %s", err, out)
	}
	return nil
}

// sweep stops and removes the clusters of campaigns that died without
// cleaning up (their owner.pid names no live process).
func (c *cluster) sweep(parent string) {
	if parent == "" {
		parent = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(parent, "baasmigrate-chaos-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && syscall.Kill(pid, 0) == nil {
			continue // its campaign still runs
		}
		old := &cluster{bin: c.bin, data: filepath.Join(dir, "data"), asPostgres: c.asPostgres}
		old.stop()
	}
}

// stop stops the cluster and removes its directory.
func (c *cluster) stop() {
	_, _ = c.run("pg_ctl", "stop", "-D", c.data, "-m", "immediate", "-w", "-t", "60")
	os.RemoveAll(filepath.Dir(c.data))
}

// ready waits until the cluster accepts connections (after a restart).
func (c *cluster) ready(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.url("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
