//go:build faults

package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/api"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas"
)

// Fault tests (`make test-faults`, build tag faults): real Kafka and real
// Cassandra from deploy/local are paused, killed and restarted while rtgraph
// ingests and serves, and the final state is compared exactly with the one
// the input calls for. They signal the servers by the PIDs in the state dir
// of deploy/local/infra.sh and start them again with it, so they run only
// against a set of servers of their own (own state dir and ports), never the
// ones other tests share. docs/reliability.md records what they measured.

// Environment the fault tests need besides RTGRAPH_TEST_KAFKA and
// RTGRAPH_TEST_CASSANDRA (`make test-faults` sets all of them).
const (
	envFaultsInfra  = "RTGRAPH_FAULTS_INFRA"          // path of deploy/local/infra.sh
	envInfraDir     = "RTGRAPH_INFRA_DIR"             // state dir of the servers (PID files)
	envPoisonCount  = "RTGRAPH_FAULTS_POISON_RECORDS" // records of the poison test
	defaultPoisonN  = 1_000_000
	faultFcapEvents = 20_000 // impressions per Cassandra/Kafka fault scenario
	faultPause      = 30 * time.Second
)

// faultServers are the Kafka and Cassandra this run may pause and kill.
type faultServers struct {
	script, dir string
}

// faultInfra returns the servers of `make test-faults`, failing the test
// when they are missing or look like the shared ones.
func faultInfra(t *testing.T) *faultServers {
	t.Helper()
	kafka, cass := testenv.Kafka(t), testenv.Cassandra(t)
	script, dir := os.Getenv(envFaultsInfra), os.Getenv(envInfraDir)
	if script == "" || dir == "" {
		t.Fatalf("%s and %s must be set: the fault tests pause and kill their servers, so they run only against "+
			"servers of their own; run `make test-faults`", envFaultsInfra, envInfraDir)
	}
	repo := filepath.Dir(filepath.Dir(filepath.Dir(script))) // <repo>/deploy/local/infra.sh
	if filepath.Clean(dir) == filepath.Join(repo, ".infra") {
		t.Fatalf("%s=%s is the state dir of the shared servers; the fault tests need their own", envInfraDir, dir)
	}
	for _, c := range []struct{ addr, portVar, def string }{
		{kafka, "KAFKA_PORT", "9092"}, {cass, "CASSANDRA_PORT", "9042"},
	} {
		port := os.Getenv(c.portVar)
		if port == "" || port == c.def || c.addr != "127.0.0.1:"+port {
			t.Fatalf("server %s is not the fault tests' own (%s=%q): run `make test-faults`", c.addr, c.portVar, port)
		}
	}
	f := &faultServers{script: script, dir: filepath.Clean(dir)}
	f.pid(t, "kafka")
	f.pid(t, "cassandra")
	return f
}

// pid returns the PID in name's PID file, checked to be that server of this
// state dir.
func (f *faultServers) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "run", name+".pid"))
	if err != nil {
		t.Fatalf("%s PID file: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s PID file: %v", name, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(f.dir+"/")) {
		t.Fatalf("PID %d of %s is not a server of %s", pid, name, f.dir)
	}
	return pid
}

// signal sends sig to name's server and returns its PID.
func (f *faultServers) signal(t *testing.T, name string, sig syscall.Signal) int {
	t.Helper()
	pid := f.pid(t, name)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("%s to %s (PID %d): %v", sig, name, pid, err)
	}
	t.Logf("%s: sent %s to PID %d at %s", name, sig, pid, time.Now().UTC().Format(time.RFC3339Nano))
	return pid
}

// kill SIGKILLs name's server and waits until it is gone (its ports free).
func (f *faultServers) kill(t *testing.T, name string) {
	t.Helper()
	pid := f.signal(t, name, syscall.SIGKILL)
	waitFor(t, name+" to exit", 2*time.Minute, func() bool { return procGone(pid) })
}

// firstAccept dials addr every 20 ms until a connection is accepted, and
// returns a function that stops dialing and reports when that was (zero if
// never).
func firstAccept(addr string) func() time.Time {
	var at atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				at.Store(time.Now().UnixNano())
				_ = c.Close()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() time.Time {
		close(stop)
		<-done
		if n := at.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Time{}
	}
}

// procGone: pid has exited, or only its zombie main thread is left (as
// deploy/local/infra.sh decides before reusing the ports).
func procGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndex(s, ") ")
	if i < 0 || len(s) < i+3 || s[i+2] != 'Z' {
		return false
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return len(tasks) <= 1
}

// up starts name again with deploy/local/infra.sh in this environment (same
// state dir and ports) and returns how long it took to answer.
func (f *faultServers) up(t *testing.T, name string) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := exec.Command(f.script, "up", name).CombinedOutput()
	if err != nil {
		t.Fatalf("%s up %s: %v\n%s", f.script, name, err, out)
	}
	return time.Since(start)
}

// ensureRunning resumes a stopped server and starts a dead one, so a failed
// test leaves the servers as the next one needs them.
func (f *faultServers) ensureRunning(t *testing.T, name string) {
	b, err := os.ReadFile(filepath.Join(f.dir, "run", name+".pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 0 && !procGone(pid) {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		return
	}
	if out, err := exec.Command(f.script, "up", name).CombinedOutput(); err != nil {
		t.Errorf("restarting %s after the test: %v\n%s", name, err, out)
	}
}

// fcapRun is a frequency-cap ingestion on real Kafka and Cassandra: a
// prefix of fcapStream published to a topic of its own, consumed by child
// ingest processes (fcapChild) into a keyspace of its own.
type fcapRun struct {
	kc     KafkaConfig
	ccfg   cassandra.Config
	spec   fcapSpec
	events []fcapEvent
}

func newFcapRun(t *testing.T, n int, seed uint64) *fcapRun {
	t.Helper()
	r := &fcapRun{ccfg: fcapCassandraConfig(t)}
	if _, err := cassandra.Migrate(context.Background(), r.ccfg, schemas.CQLMigrations(), nil); err != nil {
		t.Fatalf("migrate %s: %v", r.ccfg.Keyspace, err)
	}
	t.Cleanup(func() { fcapDropKeyspace(t, r.ccfg) })
	r.kc = DefaultKafkaConfig()
	r.kc.Brokers = []string{testenv.Kafka(t)}
	topic, dlq := uniqueName("faults_fcap"), uniqueName("faults_fcap_dlq")
	fcapCreateTopics(t, r.kc, map[string]int32{topic: fcapPartitions, dlq: 1})
	r.events = fcapStream(rand.New(rand.NewPCG(seed, seed)), time.Now())[:n]
	recs := make([]testRecord, len(r.events))
	for i, e := range r.events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = testRecord{key: e.User, value: b, ts: time.UnixMilli(e.TS)}
	}
	produceRecords(t, r.kc, topic, recs)
	r.spec = fcapSpec{Brokers: r.kc.Brokers, Group: uniqueName("faults_g"), Topic: topic, DLQ: dlq,
		CassandraHosts: r.ccfg.Hosts, CassandraPort: r.ccfg.Port, Keyspace: r.ccfg.Keyspace}
	return r
}

// committed is the sum of the group's committed offsets; an error while
// Kafka is down or its coordinator loads.
func (r *fcapRun) committed() (int64, error) {
	sc, err := r.kc.Sarama()
	if err != nil {
		return 0, err
	}
	sc.Net.DialTimeout, sc.Net.ReadTimeout = 2*time.Second, 5*time.Second
	sc.Metadata.Retry.Max = 0
	admin, err := sarama.NewClusterAdmin(r.kc.Brokers, sc)
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	parts := make([]int32, fcapPartitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	got, err := groupOffsets(admin, r.spec.Group, map[string][]int32{r.spec.Topic: parts})
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, o := range got[r.spec.Topic] {
		sum += max(0, o)
	}
	return sum, nil
}

// waitCommittedAbove waits until more than n records are committed and
// returns when that was seen.
func (r *fcapRun) waitCommittedAbove(t *testing.T, n int64, d time.Duration) time.Time {
	t.Helper()
	waitFor(t, fmt.Sprintf("more than %d records committed", n), d, func() bool {
		c, err := r.committed()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			return false
		}
		if c > n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
		return false
	})
	return time.Now()
}

// check asserts that nothing was dead-lettered and that every default
// window's count, now and 30 minutes ago, of a sample of users and every
// target they saw equals the count of distinct impressions of the input.
func (r *fcapRun) check(t *testing.T) {
	t.Helper()
	if dead := readAll(t, r.kc, r.spec.DLQ); len(dead) != 0 {
		dl, _ := ParseDeadLetter(dead[0].Headers)
		t.Fatalf("%d records dead-lettered, want none; first: %+v", len(dead), dl)
	}
	_, counts, rules, closeAll := openCassandraCounts(t, r.ccfg)
	defer closeAll()
	fcapCompare(t, counts, r.events, rules.Retention())
}

func openCassandraCounts(t *testing.T, cfg cassandra.Config) (*cassandra.Store, *cassandra.Counts, *graph.CountRules, func()) {
	t.Helper()
	session, err := cassandra.NewSession(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cassandra.New(session, cfg, schema, cassandra.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := graph.NewCountRules(graph.DefaultCountConfig(), schema)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := cassandra.NewCounts(st, rules, cassandra.CountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st, counts, rules, func() { _ = counts.Close(); _ = st.Close(); session.Close() }
}

// queryLoad is the API served from the run's keyspace with clients reading
// counts and nodes all the time.
type queryLoad struct {
	base    string
	mu      sync.Mutex
	answers []answer
	log     syncBuf // the API's warnings
	stop    chan struct{}
	wg      sync.WaitGroup
}

// answer is one API response.
type answer struct {
	start, end  time.Time
	path        string
	status      int
	retryAfter  string
	contentType string
}

// startQueryLoad serves the API (defaults, without keys and rate limit) from
// cfg's keyspace on 127.0.0.1 and runs four clients against it.
func startQueryLoad(t *testing.T, r *fcapRun) *queryLoad {
	t.Helper()
	st, counts, _, closeAll := openCassandraCounts(t, r.ccfg)
	t.Cleanup(closeAll)
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.AuthRequired = false
	cfg.RateLimit = api.RateLimit{}
	cfg.CountsRateLimit = api.RateLimit{} // the query load is not what is measured
	q := &queryLoad{stop: make(chan struct{})}
	logger := slog.New(slog.NewTextHandler(&q.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := api.New(api.Options{Config: cfg, Store: st, Schema: schema, Counts: counts, Readiness: lifecycle.NewReadiness(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	q.base = "http://" + ln.Addr().String()
	t.Cleanup(func() { q.halt(); _ = srv.Close() })
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 4 {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; ; i++ {
				select {
				case <-q.stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				e := r.events[rng.IntN(len(r.events))]
				path := "/v1/nodes/user/" + url.PathEscape(e.User)
				if i%2 == 0 {
					path = "/v1/counts/user/" + url.PathEscape(e.User) + "?edge_type=impressed&target=" +
						url.QueryEscape("campaign:"+e.Campaign) + "&windows=1m,1h,1d"
				}
				a := answer{start: time.Now(), path: path}
				resp, err := client.Get(q.base + path)
				a.end = time.Now()
				if err != nil {
					a.status = -1
				} else {
					a.status, a.retryAfter, a.contentType = resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type")
					_ = resp.Body.Close()
				}
				q.mu.Lock()
				q.answers = append(q.answers, a)
				q.mu.Unlock()
			}
		}()
	}
	return q
}

// syncBuf is a bytes.Buffer safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (q *queryLoad) halt() {
	select {
	case <-q.stop:
	default:
		close(q.stop)
	}
	q.wg.Wait()
}

// firstOKAfter waits for the first 200 to a request sent after since and
// returns when it was answered.
func (q *queryLoad) firstOKAfter(t *testing.T, since time.Time, d time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, "the API to answer 200 again", d, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, a := range q.answers {
			if a.status == http.StatusOK && a.start.After(since) {
				at = a.end
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
		return false
	})
	return at
}

// checkOutage asserts that every request sent and answered within
// [from, to) was refused as unavailable (503) or out of time (504), as a
// problem with Retry-After, that there were some, and that no request of
// the whole run failed otherwise (200 and 404 — a user without a node — are
// the answers of a working store).
func (q *queryLoad) checkOutage(t *testing.T, from, to time.Time) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	during, byStatus := 0, map[int]int{}
	for _, a := range q.answers {
		byStatus[a.status]++
		switch a.status {
		case http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			t.Errorf("%s answered %d at %s", a.path, a.status, a.end.Format(time.RFC3339Nano))
		}
		if a.start.Before(from) || !a.end.Before(to) {
			continue
		}
		during++
		if a.status != http.StatusServiceUnavailable && a.status != http.StatusGatewayTimeout {
			t.Errorf("during the outage %s answered %d", a.path, a.status)
		}
		if a.retryAfter != "1" || a.contentType != "application/problem+json" {
			t.Errorf("during the outage %s answered %d with Retry-After %q, Content-Type %q", a.path, a.status, a.retryAfter, a.contentType)
		}
	}
	if during == 0 {
		t.Errorf("no request was answered during the outage")
	}
	if byStatus[http.StatusInternalServerError] > 0 {
		for _, line := range strings.Split(q.log.String(), "\n") {
			if strings.Contains(line, "status=500") {
				t.Logf("API log: %s", line)
			}
		}
	}
	t.Logf("API answers: %d during the outage; whole run by status %v", during, byStatus)
}

// TestFaultCassandraPaused stops Cassandra (SIGSTOP) for 30 s while an
// ingest process writes impressions and the API serves counts and nodes,
// then resumes it (SIGCONT): the API refuses with Retry-After meanwhile,
// both recover, and every count equals the input's.
func TestFaultCassandraPaused(t *testing.T) {
	f := faultInfra(t)
	start := time.Now()
	r := newFcapRun(t, faultFcapEvents, 21)
	load := startQueryLoad(t, r)
	child := fcapStartChild(t, r.spec, "ingest")
	r.waitCommittedAbove(t, faultFcapEvents/4, 10*time.Minute)

	t.Cleanup(func() { f.ensureRunning(t, "cassandra") })
	pausedAt := time.Now()
	f.signal(t, "cassandra", syscall.SIGSTOP)
	time.Sleep(faultPause)
	atResume, err := r.committed()
	if err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	f.signal(t, "cassandra", syscall.SIGCONT)
	apiBack := load.firstOKAfter(t, resumedAt, 5*time.Minute)
	ingestBack := r.waitCommittedAbove(t, atResume, 5*time.Minute)
	waitCommitted(t, r.kc, r.spec.Group, r.spec.Topic, 10*time.Minute)
	doneAt := time.Now()
	fcapStopChild(t, child)
	load.halt()
	// Requests sent in the first second of the pause may have been answered
	// from data read just before it.
	load.checkOutage(t, pausedAt.Add(time.Second), resumedAt)
	r.check(t)
	t.Logf("FIGURE cassandra-pause: paused %s; API answered 200 again %s after SIGCONT; ingest committed again %s after SIGCONT; "+
		"%d of %d records committed at the resume; all committed %s after the resume; test %s",
		resumedAt.Sub(pausedAt).Round(time.Millisecond), apiBack.Sub(resumedAt).Round(time.Millisecond),
		ingestBack.Sub(resumedAt).Round(time.Millisecond), atResume, faultFcapEvents,
		doneAt.Sub(resumedAt).Round(time.Millisecond), time.Since(start).Round(time.Second))
}

// TestFaultCassandraKilled kills Cassandra (SIGKILL) while an ingest process
// writes impressions and the API serves, starts it again with
// deploy/local/infra.sh, and checks as TestFaultCassandraPaused does.
func TestFaultCassandraKilled(t *testing.T) {
	f := faultInfra(t)
	start := time.Now()
	r := newFcapRun(t, faultFcapEvents, 22)
	load := startQueryLoad(t, r)
	child := fcapStartChild(t, r.spec, "ingest")
	r.waitCommittedAbove(t, faultFcapEvents/4, 10*time.Minute)

	t.Cleanup(func() { f.ensureRunning(t, "cassandra") })
	killedAt := time.Now()
	f.kill(t, "cassandra")
	// The outage the API must report runs from the moment the process is
	// gone (a busy machine can take seconds to reap a JVM) until the new
	// one first accepts a connection (infra.sh returns later than that).
	goneAt := time.Now()
	listening := firstAccept(testenv.Cassandra(t))
	took := f.up(t, "cassandra")
	readyAt := time.Now()
	listenAt := listening()
	if listenAt.IsZero() || listenAt.After(readyAt) {
		listenAt = readyAt
	}
	apiBack := load.firstOKAfter(t, readyAt, 5*time.Minute)
	atReady, err := r.committed()
	if err != nil {
		t.Fatal(err)
	}
	ingestBack := r.waitCommittedAbove(t, atReady, 5*time.Minute)
	waitCommitted(t, r.kc, r.spec.Group, r.spec.Topic, 10*time.Minute)
	doneAt := time.Now()
	fcapStopChild(t, child)
	load.halt()
	load.checkOutage(t, goneAt, listenAt)
	r.check(t)
	t.Logf("FIGURE cassandra-kill: down %s (infra.sh up took %s); API answered 200 again %s after Cassandra answered; "+
		"ingest committed again %s after it answered; all committed %s after it answered; test %s",
		readyAt.Sub(killedAt).Round(time.Millisecond), took.Round(time.Millisecond), apiBack.Sub(readyAt).Round(time.Millisecond),
		ingestBack.Sub(readyAt).Round(time.Millisecond), doneAt.Sub(readyAt).Round(time.Millisecond), time.Since(start).Round(time.Second))
}

// TestFaultKafkaRestarted kills the Kafka broker (SIGKILL) while an ingest
// process consumes, starts it again with deploy/local/infra.sh, and checks
// that the process resumes by itself and every count equals the input's.
func TestFaultKafkaRestarted(t *testing.T) {
	f := faultInfra(t)
	start := time.Now()
	r := newFcapRun(t, faultFcapEvents, 23)
	child := fcapStartChild(t, r.spec, "ingest")
	r.waitCommittedAbove(t, faultFcapEvents/4, 10*time.Minute)
	before, err := r.committed()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { f.ensureRunning(t, "kafka") })
	killedAt := time.Now()
	f.kill(t, "kafka")
	took := f.up(t, "kafka")
	readyAt := time.Now()
	var atReady int64
	waitFor(t, "the group's offsets to be readable", 5*time.Minute, func() bool {
		c, err := r.committed()
		atReady = c
		if err != nil {
			time.Sleep(200 * time.Millisecond)
		}
		return err == nil
	})
	if atReady < before {
		t.Fatalf("committed offsets went back from %d to %d over the restart", before, atReady)
	}
	ingestBack := r.waitCommittedAbove(t, atReady, 5*time.Minute)
	waitCommitted(t, r.kc, r.spec.Group, r.spec.Topic, 10*time.Minute)
	doneAt := time.Now()
	fcapStopChild(t, child)
	r.check(t)
	t.Logf("FIGURE kafka-restart: down %s (infra.sh up took %s); ingest committed again %s after Kafka answered; "+
		"all committed %s after it answered; test %s",
		readyAt.Sub(killedAt).Round(time.Millisecond), took.Round(time.Millisecond), ingestBack.Sub(readyAt).Round(time.Millisecond),
		doneAt.Sub(readyAt).Round(time.Millisecond), time.Since(start).Round(time.Second))
}

// TestFaultIngestKilledDuringRebalance runs three ingest processes in one
// group: the second and third join while the first consumes, and the second
// is killed (SIGKILL: no flush, no commit, no leave) as soon as it has
// joined the group, while the third's join rebalances the group again. The
// survivors take its partitions over and finish; every count equals the
// input's.
func TestFaultIngestKilledDuringRebalance(t *testing.T) {
	faultInfra(t)
	start := time.Now()
	r := newFcapRun(t, faultFcapEvents, 24)
	a := fcapStartChild(t, r.spec, "a")
	r.waitCommittedAbove(t, faultFcapEvents/5, 10*time.Minute)
	b := fcapStartChild(t, r.spec, "b")
	c := fcapStartChild(t, r.spec, "c")
	logOf := func(cmd *exec.Cmd) []byte {
		out, _ := os.ReadFile(cmd.Stdout.(*os.File).Name())
		return out
	}
	joined := []byte("consumer group joined")
	waitFor(t, "process b to join the group", 2*time.Minute, func() bool {
		if !bytes.Contains(logOf(b), joined) {
			time.Sleep(10 * time.Millisecond)
			return false
		}
		return true
	})
	killedAt := time.Now()
	if err := b.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = b.Wait()
	atKill, err := r.committed()
	if err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, r.kc, r.spec.Group, r.spec.Topic, 10*time.Minute)
	doneAt := time.Now()
	fcapStopChild(t, a)
	fcapStopChild(t, c)
	for name, cmd := range map[string]*exec.Cmd{"a": a, "b": b, "c": c} {
		for _, line := range bytes.Split(logOf(cmd), []byte("\n")) {
			if bytes.Contains(line, joined) || bytes.Contains(line, []byte("partition lost")) || bytes.Contains(line, []byte("partition revoked")) {
				t.Logf("%s: %s", name, line)
			}
		}
	}
	r.check(t)
	t.Logf("FIGURE rebalance-kill: %d of %d records committed at the kill; all committed %s after it; test %s",
		atKill, faultFcapEvents, doneAt.Sub(killedAt).Round(time.Millisecond), time.Since(start).Round(time.Second))
}

// Poison kinds of TestFaultPoisonRecords, with the dead-letter class each
// must have.
var poisonKinds = []struct{ name, class string }{
	{"garbage", "malformed_json"},
	{"truncated", "malformed_json"},
	{"wrong_type", "bad_time"},
	{"huge", "malformed_json"},
}

const (
	poisonHugeBytes = 2 << 20 // 2 MiB
	poisonHugeCount = 10
)

// poisonRecord is poison record number i of kind k.
func poisonRecord(rng *rand.Rand, k, i int, ts time.Time) testRecord {
	rec := testRecord{key: fmt.Sprintf("poison-%d", i), ts: ts, bad: true, class: poisonKinds[k].class}
	switch poisonKinds[k].name {
	case "garbage": // not JSON, not UTF-8
		b := make([]byte, 16+rng.IntN(200))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		rec.value = append([]byte{0xff, 0xfe}, b...)
	case "truncated": // a view cut short
		v := event{ID: fmt.Sprintf("p%d", i), At: ts, Op: opView, User: "u1", Item: "i1", Ms: 5, Name: "name-1"}.value()
		rec.value = v[:len(v)/2]
	case "wrong_type": // the time is an object
		rec.value = []byte(fmt.Sprintf(`{"id":"p%d","ts":{"ms":%d},"op":"view","user":"u1","item":"i1","ms":5}`, i, ts.UnixMilli()))
	case "huge": // 2 MiB, unterminated
		rec.value = append([]byte(fmt.Sprintf(`{"id":"p%d","pad":"`, i)), bytes.Repeat([]byte{'x'}, poisonHugeBytes)...)
	}
	return rec
}

// poisonStreams returns good records (views, unviews, user deletes) and the
// same good records, in the same order, with n/100 poison records mixed in
// at random places: n records in all. poisonHugeCount of the poison records
// are 2 MiB values; the rest are garbage bytes, truncated JSON and wrong
// types in turn.
func poisonStreams(rng *rand.Rand, n, users, items int, start time.Time) (good, poisoned []testRecord) {
	nPoison := n / 100
	for _, r := range mixedRecords(rng, (n-nPoison)*100/80, users, items, start) {
		if !r.bad && len(good) < n-nPoison {
			good = append(good, r)
		}
	}
	at := map[int]bool{}
	for _, p := range rng.Perm(n)[:nPoison] {
		at[p] = true
	}
	poisoned = make([]testRecord, 0, n)
	gi, pi := 0, 0
	for i := range n {
		if !at[i] {
			poisoned = append(poisoned, good[gi])
			gi++
			continue
		}
		k := pi % 3
		if pi < poisonHugeCount {
			k = 3
		}
		ts := start.Add(time.Duration(i) * time.Millisecond)
		poisoned = append(poisoned, poisonRecord(rng, k, pi, ts))
		pi++
	}
	return good, poisoned
}

// TestFaultPoisonRecords publishes 1M records (RTGRAPH_FAULTS_POISON_RECORDS)
// with 1% poison to real Kafka, the input topic taking 4 MiB records and the
// dead-letter topic the default 1 MiB, and runs the pipeline into Pebble;
// then the same good records without poison. Both graphs equal the one the
// good records give; every poison record is in the dead-letter topic once,
// with its class, the 2 MiB ones without their value but with its size and
// SHA-256. Throughput of both runs is logged.
func TestFaultPoisonRecords(t *testing.T) {
	faultInfra(t)
	start := time.Now()
	n := defaultPoisonN
	if v := os.Getenv(envPoisonCount); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10_000 {
			t.Fatalf("%s=%q: want an integer of at least 10000", envPoisonCount, v)
		}
	}
	const users, items = 2000, 3000
	good, poisoned := poisonStreams(rand.New(rand.NewPCG(12, 12)), n, users, items, recent())
	want := referenceState(t, good, users, items)

	cleanTopic, poisonTopic := uniqueName("faults_clean"), uniqueName("faults_poison")
	cleanDLQ, poisonDLQ := uniqueName("faults_clean_dlq"), uniqueName("faults_poison_dlq")
	kc := realKafka(t, map[string]int32{cleanTopic: 6, cleanDLQ: 1, poisonDLQ: 1})
	admin := newAdmin(t, kc)
	maxBytes := strconv.Itoa(4 << 20)
	if err := admin.CreateTopic(poisonTopic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &maxBytes}}, false); err != nil {
		t.Fatalf("create topic %s: %v", poisonTopic, err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopic(poisonTopic) })
	waitFor(t, "the poison topic to be visible", 30*time.Second, func() bool {
		md, err := admin.DescribeTopics([]string{poisonTopic})
		return err == nil && len(md) == 1 && len(md[0].Partitions) == 6
	})

	produceStart := time.Now()
	produceRecords(t, kc, cleanTopic, good)
	var small, huge []testRecord
	for _, r := range poisoned {
		if len(r.value) > poisonHugeBytes {
			huge = append(huge, r)
		} else {
			small = append(small, r)
		}
	}
	produceRecords(t, kc, poisonTopic, small)
	produceHuge(t, kc, poisonTopic, huge)
	t.Logf("published %d + %d records in %s", len(good), len(poisoned), time.Since(produceStart).Round(time.Millisecond))

	type result struct {
		elapsed time.Duration
		state   string
	}
	run := func(topic, dlq string) result {
		store := openEmbedded(t, t.TempDir())
		defer store.Close()
		cfg := DefaultConfig()
		tc := kafkaTestConfig(uniqueName("faults_poison_g"), topic, dlq)
		cfg.GroupID, cfg.Topics, cfg.DeadLetterTopic = tc.GroupID, tc.Topics, tc.DeadLetterTopic
		began := time.Now()
		p := startPipeline(t, cfg, kc, store, store, &testMapper{})
		waitCommitted(t, kc, cfg.GroupID, topic, 20*time.Minute)
		elapsed := time.Since(began)
		if err := p.stop(t); err != nil {
			t.Fatalf("Run = %v", err)
		}
		return result{elapsed, dumpState(t, store, names("u", users), names("i", items))}
	}
	clean := run(cleanTopic, cleanDLQ)
	if clean.state != want {
		t.Fatalf("graph of the run without poison differs from the reference")
	}
	if dead := readAll(t, kc, cleanDLQ); len(dead) != 0 {
		t.Fatalf("%d dead letters of the run without poison, want none", len(dead))
	}
	dirty := run(poisonTopic, poisonDLQ)
	if dirty.state != want {
		t.Fatalf("graph of the run with poison differs from the reference")
	}
	checkPoisonDeadLetters(t, readAll(t, kc, poisonDLQ), poisoned, poisonTopic)

	cleanRate := float64(len(good)) / clean.elapsed.Seconds()
	dirtyRate := float64(len(poisoned)) / dirty.elapsed.Seconds()
	dirtyGoodRate := float64(len(good)) / dirty.elapsed.Seconds()
	t.Logf("FIGURE poison: %d records, %d poison (%d of 2 MiB); without poison %d records in %s = %.0f records/s; "+
		"with poison %d records in %s = %.0f records/s (%.0f good records/s); drop in good records/s %.1f%%; test %s",
		len(poisoned), len(poisoned)-len(good), poisonHugeCount, len(good), clean.elapsed.Round(time.Millisecond), cleanRate,
		len(poisoned), dirty.elapsed.Round(time.Millisecond), dirtyRate, dirtyGoodRate, 100*(1-dirtyGoodRate/cleanRate),
		time.Since(start).Round(time.Second))
}

// produceHuge publishes records of up to 4 MiB.
func produceHuge(t *testing.T, kc KafkaConfig, topic string, recs []testRecord) {
	t.Helper()
	sc, err := producerConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.MaxMessageBytes = 4 << 20
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, r := range recs {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key),
			Value: sarama.ByteEncoder(r.value), Timestamp: r.ts}); err != nil {
			t.Fatalf("produce %d bytes: %v", len(r.value), err)
		}
	}
}

// checkPoisonDeadLetters checks that the dead-letter topic holds each
// poison record once (identified by the SHA-256 of its value, carried in a
// header when the value was left out) with its class, and nothing else;
// the 2 MiB ones without their value.
func checkPoisonDeadLetters(t *testing.T, dead []*sarama.ConsumerMessage, recs []testRecord, topic string) {
	t.Helper()
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	want := map[string]testRecord{}
	for _, r := range recs {
		if r.bad {
			want[sum(r.value)] = r
		}
	}
	got := map[string]int{}
	omitted := 0
	seen := map[string]bool{}
	for _, m := range dead {
		dl, err := ParseDeadLetter(m.Headers)
		if err != nil {
			t.Fatalf("dead letter at %d: %v", m.Offset, err)
		}
		if dl.Topic != topic || dl.Stage == "" || dl.Reason == "" {
			t.Fatalf("dead letter headers incomplete: %+v", dl)
		}
		src := fmt.Sprintf("%d/%d", dl.Partition, dl.Offset)
		if seen[src] {
			t.Errorf("record %s dead-lettered twice", src)
			continue
		}
		seen[src] = true
		h := sum(m.Value)
		if dl.ValueOmitted {
			omitted++
			h = dl.ValueSHA256
			if dl.ValueBytes <= poisonHugeBytes || len(m.Value) != 0 {
				t.Errorf("dead letter %s: value omitted with %d bytes recorded and %d sent", src, dl.ValueBytes, len(m.Value))
			}
		}
		r, ok := want[h]
		if !ok {
			t.Errorf("dead letter %s is no poison record (class %s: %s)", src, dl.Class, dl.Reason)
			continue
		}
		if dl.Class != r.class {
			t.Errorf("dead letter %s: class %q (%s), want %q", src, dl.Class, dl.Reason, r.class)
		}
		got[h]++
	}
	for h, r := range want {
		if got[h] != 1 {
			t.Errorf("poison record %q...: %d dead letters, want 1", r.value[:min(len(r.value), 40)], got[h])
		}
	}
	if omitted != poisonHugeCount {
		t.Errorf("%d dead letters without their value, want the %d of 2 MiB", omitted, poisonHugeCount)
	}
	t.Logf("%d dead letters, %d without their value", len(dead), omitted)
}
