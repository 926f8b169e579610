package firestoreemu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FaultRule is one kind of injected failure.
//
// Without AfterDocuments it fails whole calls: a matching call fails, before
// it runs, with Code. With AfterDocuments it cuts server streams (RunQuery,
// BatchGetDocuments, Listen, RunAggregationQuery): the stream ends with Code
// when it is about to send document number AfterDocuments+1.
//
// With Stall the rule delays instead of failing: the matching call (before
// it runs) or stream (before it sends document number AfterDocuments+1)
// blocks, sending nothing, until the stall duration has passed, the client
// cancels (the call then ends with the client's cancellation), or the
// project's faults are cleared or replaced; after an elapsed or cleared
// stall the call carries on normally. Code is not used by a stall rule.
//
// With RemoveTarget (Listen only, with AfterDocuments) the rule gives up a
// target instead of cutting the stream, as Firestore does with a target it
// cannot bring up to date: document number AfterDocuments+1 is not sent, its
// targets get TargetChange{REMOVE, cause: Code}, and nothing more is sent
// for them on that stream; the stream and its other targets go on.
type FaultRule struct {
	// Methods restricts the rule to these RPC method names ("Commit",
	// "RunQuery", ...); empty means every method.
	Methods []string `json:"methods,omitempty"`
	// Code is the gRPC code name to fail with: "UNAVAILABLE" (default) or
	// "RESOURCE_EXHAUSTED" (any code name is accepted).
	Code string `json:"code,omitempty"`
	// Fraction of matching calls or streams affected, in [0, 1]; omitted
	// means 1 (all).
	Fraction *float64 `json:"fraction,omitempty"`
	// AfterDocuments makes this a stream-cut rule: see the type comment.
	AfterDocuments *int `json:"afterDocuments,omitempty"`
	// Times bounds how many failures the rule injects; 0 means no bound.
	Times int `json:"times,omitempty"`
	// Stall makes this a stall rule: a Go duration ("30s") or "forever"
	// (until the client cancels or the faults are cleared).
	Stall string `json:"stall,omitempty"`
	// RemoveTarget makes a Listen stream-cut rule remove the targets of
	// the document instead: see the type comment.
	RemoveTarget bool `json:"removeTarget,omitempty"`
}

// StallEvent is one stall a rule injected, as the faults hook reports it.
type StallEvent struct {
	// Rule is the index of the rule in FaultConfig.Rules.
	Rule   int    `json:"rule"`
	Method string `json:"method"`
	// Start is when the stall began.
	Start time.Time `json:"start"`
	// Seconds is how long the call was held (so far, while Ended is "").
	Seconds float64 `json:"seconds"`
	// Ended says what ended it: "elapsed" (its duration passed),
	// "cancelled" (the client gave up: its deadline or cancellation),
	// "cleared" (the faults were cleared or replaced), or "" (still
	// stalled).
	Ended string `json:"ended"`
}

// maxStallEvents bounds the stall events kept per project (the newest win).
const maxStallEvents = 1000

// FaultConfig is the JSON body that sets the faults of one project (or of
// every project, for project "-"). Seed makes the choice of affected calls
// deterministic for a given sequence of calls.
type FaultConfig struct {
	Seed  uint64      `json:"seed"`
	Rules []FaultRule `json:"rules"`
}

// FaultStatus is what the faults hook reports: the configuration and how
// many failures each rule injected so far.
type FaultStatus struct {
	Project  string      `json:"project"`
	Seed     uint64      `json:"seed"`
	Rules    []FaultRule `json:"rules"`
	Injected []int64     `json:"injected"`
	// Stalls lists the stalls injected under this configuration, oldest
	// first (at most the last 1,000).
	Stalls []StallEvent `json:"stalls"`
}

// allProjects is the project key of faults that apply to every project.
const allProjects = "-"

type projectFaults struct {
	cfg      FaultConfig
	codes    []codes.Code
	stalls   []time.Duration // per rule: 0 none, < 0 forever
	rng      *rand.Rand
	injected []int64
	events   []*StallEvent
	// released is closed when this configuration is cleared or replaced,
	// which ends its stalls.
	released chan struct{}
}

// parseStall maps a rule's Stall to a duration: 0 for none, -1 for forever.
func parseStall(s string) (time.Duration, error) {
	switch s {
	case "":
		return 0, nil
	case "forever":
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("stall %q is neither a positive duration nor \"forever\"", s)
	}
	return d, nil
}

// faultInjector holds the fault configurations and applies them through
// gRPC interceptors.
type faultInjector struct {
	mu        sync.Mutex
	byProject map[string]*projectFaults
}

func newFaultInjector() *faultInjector {
	return &faultInjector{byProject: map[string]*projectFaults{}}
}

// parseCode maps a gRPC code name to its code.
func parseCode(name string) (codes.Code, error) {
	if name == "" {
		return codes.Unavailable, nil
	}
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(`"` + strings.ToUpper(name) + `"`)); err != nil {
		return 0, fmt.Errorf("unknown gRPC code %q", name)
	}
	return c, nil
}

// set replaces the faults of a project.
func (f *faultInjector) set(project string, cfg FaultConfig) error {
	pf := &projectFaults{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), injected: make([]int64, len(cfg.Rules)), released: make(chan struct{})}
	for i, r := range cfg.Rules {
		c, err := parseCode(r.Code)
		if err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
		st, err := parseStall(r.Stall)
		if err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
		pf.stalls = append(pf.stalls, st)
		if r.Fraction != nil && (*r.Fraction < 0 || *r.Fraction > 1) {
			return fmt.Errorf("rule %d: fraction %v is not within [0, 1]", i, *r.Fraction)
		}
		if r.AfterDocuments != nil && *r.AfterDocuments < 0 {
			return fmt.Errorf("rule %d: afterDocuments must not be negative", i)
		}
		if r.Times < 0 {
			return fmt.Errorf("rule %d: times must not be negative", i)
		}
		if r.RemoveTarget && (r.AfterDocuments == nil || st != 0 || len(r.Methods) != 1 || !strings.EqualFold(r.Methods[0], "Listen")) {
			return fmt.Errorf("rule %d: removeTarget needs afterDocuments, methods [\"Listen\"] and no stall", i)
		}
		pf.codes = append(pf.codes, c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.byProject[project]; old != nil {
		close(old.released)
	}
	f.byProject[project] = pf
	return nil
}

// clear removes the faults of a project, or of every project when project
// is "".
func (f *faultInjector) clear(project string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, pf := range f.byProject {
		if project == "" || key == project {
			close(pf.released)
			delete(f.byProject, key)
		}
	}
}

func (f *faultInjector) status(project string) FaultStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := FaultStatus{Project: project, Rules: []FaultRule{}, Injected: []int64{}, Stalls: []StallEvent{}}
	if pf := f.byProject[project]; pf != nil {
		st.Seed = pf.cfg.Seed
		st.Rules = pf.cfg.Rules
		st.Injected = append(st.Injected, pf.injected...)
		for _, ev := range pf.events {
			e := *ev
			if e.Ended == "" {
				e.Seconds = time.Since(e.Start).Seconds()
			}
			st.Stalls = append(st.Stalls, e)
		}
	}
	return st
}

func ruleMatches(r FaultRule, method string) bool {
	if len(r.Methods) == 0 {
		return true
	}
	for _, m := range r.Methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// roll decides whether rule i of pf fires now. Callers hold f.mu.
func (pf *projectFaults) roll(i int) bool {
	r := pf.cfg.Rules[i]
	if r.Times > 0 && pf.injected[i] >= int64(r.Times) {
		return false
	}
	if r.Fraction != nil && pf.rng.Float64() >= *r.Fraction {
		return false
	}
	return true
}

// pendingStall is a stall decided under the injector's lock, to be waited
// out (by wait) without it.
type pendingStall struct {
	d        time.Duration // < 0: forever
	released <-chan struct{}
	event    *StallEvent
}

// inject counts one injection of rule i and returns the error to fail
// with, or, for a stall rule, the stall to wait out. Callers hold f.mu.
func (pf *projectFaults) inject(i int, method, what string) (*pendingStall, error) {
	pf.injected[i]++
	if d := pf.stalls[i]; d != 0 {
		ev := &StallEvent{Rule: i, Method: method, Start: time.Now()}
		if len(pf.events) == maxStallEvents {
			pf.events = pf.events[1:]
		}
		pf.events = append(pf.events, ev)
		return &pendingStall{d: d, released: pf.released, event: ev}, nil
	}
	if pf.cfg.Rules[i].RemoveTarget {
		return nil, &removeTargetFault{code: pf.codes[i], msg: fmt.Sprintf("firestoreemu: injected fault (rule %d): target removed", i)}
	}
	return nil, status.Errorf(pf.codes[i], "firestoreemu: injected fault (rule %d)%s", i, what)
}

// removeTargetFault is what a RemoveTarget rule injects: the targets of the
// document about to be sent are removed with this cause.
type removeTargetFault struct {
	code codes.Code
	msg  string
}

func (f *removeTargetFault) Error() string { return f.msg }

// wait blocks for a stall: until its duration passes, its configuration is
// cleared or replaced (then it returns nil and the call carries on), or
// ctx ends (then it returns the client's cancellation as a status error).
func (f *faultInjector) wait(ctx context.Context, ps *pendingStall) error {
	if ps == nil {
		return nil
	}
	var timeout <-chan time.Time
	if ps.d > 0 {
		t := time.NewTimer(ps.d)
		defer t.Stop()
		timeout = t.C
	}
	var ended string
	var err error
	select {
	case <-timeout:
		ended = "elapsed"
	case <-ps.released:
		ended = "cleared"
	case <-ctx.Done():
		ended = "cancelled"
		err = status.FromContextError(ctx.Err()).Err()
	}
	f.mu.Lock()
	ps.event.Ended = ended
	ps.event.Seconds = time.Since(ps.event.Start).Seconds()
	f.mu.Unlock()
	return err
}

// callFault returns the error to fail a call with, or the stall to hold it
// in, or neither.
func (f *faultInjector) callFault(project, method string) (*pendingStall, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, key := range []string{project, allProjects} {
		pf := f.byProject[key]
		if pf == nil {
			continue
		}
		for i, r := range pf.cfg.Rules {
			if r.AfterDocuments != nil || !ruleMatches(r, method) || !pf.roll(i) {
				continue
			}
			return pf.inject(i, method, " on "+method)
		}
	}
	return nil, nil
}

// streamDecision remembers, for one stream, whether a stream-cut rule
// applies to it (the fraction is drawn once per stream and rule).
type streamDecision struct {
	pf   *projectFaults
	rule int
}

// cut returns the error to end a stream with, or the stall to hold it in,
// before it sends one more document, having sent sent documents so far, or
// neither. Rules are looked up on every document, so a rule set while a
// stream is open applies to it.
func (f *faultInjector) cut(project, method string, sent int, decided map[streamDecision]bool) (*pendingStall, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, key := range []string{project, allProjects} {
		pf := f.byProject[key]
		if pf == nil {
			continue
		}
		for i, r := range pf.cfg.Rules {
			if r.AfterDocuments == nil || sent < *r.AfterDocuments || !ruleMatches(r, method) {
				continue
			}
			if r.Times > 0 && pf.injected[i] >= int64(r.Times) {
				continue
			}
			d := streamDecision{pf, i}
			applies, ok := decided[d]
			if !ok {
				applies = r.Fraction == nil || pf.rng.Float64() < *r.Fraction
				decided[d] = applies
			}
			if !applies {
				continue
			}
			return pf.inject(i, method, fmt.Sprintf(": %s stream cut after %d documents", method, sent))
		}
	}
	return nil, nil
}

func methodName(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

// projectOf finds the project a request is for, from its database, parent
// or name field.
func projectOf(m any) string {
	msg, ok := m.(proto.Message)
	if !ok {
		return ""
	}
	if u, ok := m.(*pb.UpdateDocumentRequest); ok {
		return projectFromName(u.GetDocument().GetName())
	}
	r := msg.ProtoReflect()
	fields := r.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"database", "parent", "name"} {
		fd := fields.ByName(name)
		if fd != nil && fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated {
			if s := r.Get(fd).String(); s != "" {
				return projectFromName(s)
			}
		}
	}
	return ""
}

func projectFromName(name string) string {
	parts := strings.SplitN(name, "/", 3)
	if len(parts) >= 2 && parts[0] == "projects" {
		return parts[1]
	}
	return ""
}

func (f *faultInjector) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	stall, err := f.callFault(projectOf(req), methodName(info.FullMethod))
	if err == nil {
		err = f.wait(ctx, stall)
	}
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (f *faultInjector) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &faultStream{ServerStream: ss, inj: f, method: methodName(info.FullMethod)})
}

// faultStream applies faults to one server stream: a call fault when the
// first request arrives, and cuts while documents are sent.
type faultStream struct {
	grpc.ServerStream
	inj    *faultInjector
	method string

	mu      sync.Mutex
	checked bool
	project string
	sent    int
	decided map[streamDecision]bool
	// removed are the Listen targets a RemoveTarget rule gave up: nothing
	// more is sent for them.
	removed map[int32]bool
}

func (s *faultStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	s.mu.Lock()
	if s.checked {
		s.mu.Unlock()
		return nil
	}
	s.checked = true
	s.project = projectOf(m)
	s.decided = map[streamDecision]bool{}
	stall, err := s.inj.callFault(s.project, s.method)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.inj.wait(s.Context(), stall)
}

func (s *faultStream) SendMsg(m any) error {
	if lr, ok := m.(*pb.ListenResponse); ok && len(s.removed) > 0 {
		if lr = s.withoutRemoved(lr); lr == nil {
			return nil
		}
		m = lr
	}
	if carriesDocument(m) {
		s.mu.Lock()
		stall, err := s.inj.cut(s.project, s.method, s.sent, s.decided)
		s.sent++
		s.mu.Unlock()
		if err == nil {
			err = s.inj.wait(s.Context(), stall)
		}
		var rf *removeTargetFault
		if errors.As(err, &rf) {
			return s.removeTargets(m.(*pb.ListenResponse), rf)
		}
		if err != nil {
			return err
		}
	}
	return s.ServerStream.SendMsg(m)
}

// removeTargets gives up the targets of the document change r instead of
// sending it. SendMsg is called from the stream's one sending goroutine.
func (s *faultStream) removeTargets(r *pb.ListenResponse, rf *removeTargetFault) error {
	ids := r.GetDocumentChange().GetTargetIds()
	if len(ids) == 0 {
		return s.ServerStream.SendMsg(r) // a removal only: no target to give up
	}
	if s.removed == nil {
		s.removed = map[int32]bool{}
	}
	for _, id := range ids {
		s.removed[id] = true
	}
	return s.ServerStream.SendMsg(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
		TargetChangeType: pb.TargetChange_REMOVE, TargetIds: ids,
		Cause: &rpcstatus.Status{Code: int32(rf.code), Message: rf.msg},
	}}})
}

// withoutRemoved returns r without what concerns removed targets, or nil
// when nothing is left to send.
func (s *faultStream) withoutRemoved(r *pb.ListenResponse) *pb.ListenResponse {
	keep := func(ids []int32) []int32 {
		var out []int32
		for _, id := range ids {
			if !s.removed[id] {
				out = append(out, id)
			}
		}
		return out
	}
	switch x := r.ResponseType.(type) {
	case *pb.ListenResponse_TargetChange:
		if len(x.TargetChange.TargetIds) == 0 {
			return r // global
		}
		ids := keep(x.TargetChange.TargetIds)
		if len(ids) == 0 {
			return nil
		}
		tc := proto.Clone(x.TargetChange).(*pb.TargetChange)
		tc.TargetIds = ids
		return &pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: tc}}
	case *pb.ListenResponse_DocumentChange:
		added, removed := keep(x.DocumentChange.TargetIds), keep(x.DocumentChange.RemovedTargetIds)
		if len(added)+len(removed) == 0 {
			return nil
		}
		return &pb.ListenResponse{ResponseType: &pb.ListenResponse_DocumentChange{DocumentChange: &pb.DocumentChange{
			Document: x.DocumentChange.Document, TargetIds: added, RemovedTargetIds: removed,
		}}}
	case *pb.ListenResponse_DocumentDelete:
		if ids := x.DocumentDelete.RemovedTargetIds; len(ids) > 0 && len(keep(ids)) == 0 {
			return nil
		}
	case *pb.ListenResponse_DocumentRemove:
		if ids := x.DocumentRemove.RemovedTargetIds; len(ids) > 0 && len(keep(ids)) == 0 {
			return nil
		}
	}
	return r
}

// carriesDocument reports stream messages that count as a document sent.
func carriesDocument(m any) bool {
	switch x := m.(type) {
	case *pb.RunQueryResponse:
		return x.Document != nil
	case *pb.BatchGetDocumentsResponse:
		return x.Result != nil
	case *pb.ListenResponse:
		_, ok := x.ResponseType.(*pb.ListenResponse_DocumentChange)
		return ok
	case *pb.RunAggregationQueryResponse:
		return x.Result != nil
	}
	return false
}
