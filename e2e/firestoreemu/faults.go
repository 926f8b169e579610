package firestoreemu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
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
}

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
}

// allProjects is the project key of faults that apply to every project.
const allProjects = "-"

type projectFaults struct {
	cfg      FaultConfig
	codes    []codes.Code
	rng      *rand.Rand
	injected []int64
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
	pf := &projectFaults{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), injected: make([]int64, len(cfg.Rules))}
	for i, r := range cfg.Rules {
		c, err := parseCode(r.Code)
		if err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
		if r.Fraction != nil && (*r.Fraction < 0 || *r.Fraction > 1) {
			return fmt.Errorf("rule %d: fraction %v is not within [0, 1]", i, *r.Fraction)
		}
		if r.AfterDocuments != nil && *r.AfterDocuments < 0 {
			return fmt.Errorf("rule %d: afterDocuments must not be negative", i)
		}
		if r.Times < 0 {
			return fmt.Errorf("rule %d: times must not be negative", i)
		}
		pf.codes = append(pf.codes, c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byProject[project] = pf
	return nil
}

// clear removes the faults of a project, or of every project when project
// is "".
func (f *faultInjector) clear(project string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if project == "" {
		f.byProject = map[string]*projectFaults{}
		return
	}
	delete(f.byProject, project)
}

func (f *faultInjector) status(project string) FaultStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := FaultStatus{Project: project, Rules: []FaultRule{}, Injected: []int64{}}
	if pf := f.byProject[project]; pf != nil {
		st.Seed = pf.cfg.Seed
		st.Rules = pf.cfg.Rules
		st.Injected = append(st.Injected, pf.injected...)
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

// callFault returns the error to fail a call with, or nil.
func (f *faultInjector) callFault(project, method string) error {
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
			pf.injected[i]++
			return status.Errorf(pf.codes[i], "firestoreemu: injected fault (rule %d) on %s", i, method)
		}
	}
	return nil
}

// streamDecision remembers, for one stream, whether a stream-cut rule
// applies to it (the fraction is drawn once per stream and rule).
type streamDecision struct {
	pf   *projectFaults
	rule int
}

// cut returns the error to end a stream with before it sends one more
// document, having sent sent documents so far, or nil. Rules are looked up
// on every document, so a rule set while a stream is open applies to it.
func (f *faultInjector) cut(project, method string, sent int, decided map[streamDecision]bool) error {
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
			pf.injected[i]++
			return status.Errorf(pf.codes[i], "firestoreemu: injected fault (rule %d): %s stream cut after %d documents", i, method, sent)
		}
	}
	return nil
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
	if err := f.callFault(projectOf(req), methodName(info.FullMethod)); err != nil {
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
}

func (s *faultStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checked {
		return nil
	}
	s.checked = true
	s.project = projectOf(m)
	s.decided = map[streamDecision]bool{}
	return s.inj.callFault(s.project, s.method)
}

func (s *faultStream) SendMsg(m any) error {
	if carriesDocument(m) {
		s.mu.Lock()
		err := s.inj.cut(s.project, s.method, s.sent, s.decided)
		s.sent++
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return s.ServerStream.SendMsg(m)
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
