package firestoreemu

import (
	"fmt"
	"math"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// preparedWrite is a Write checked and parsed outside the database lock.
type preparedWrite struct {
	w          *pb.Write
	name       string
	segs       []string
	key        string
	del        bool
	fields     map[string]*pb.Value // update: the input document's fields
	mask       [][]string           // update with mask: the paths; nil = replace
	hasMask    bool
	transforms []preparedTransform
	pre        *pb.Precondition
}

type preparedTransform struct {
	path []string
	t    *pb.DocumentTransform_FieldTransform
}

// prepareWrite validates one write against database db.
func prepareWrite(db dbID, w *pb.Write) (*preparedWrite, error) {
	p := &preparedWrite{w: w, pre: w.GetCurrentDocument()}
	var transforms []*pb.DocumentTransform_FieldTransform
	switch op := w.GetOperation().(type) {
	case *pb.Write_Update:
		if op.Update == nil {
			return nil, status.Error(codes.InvalidArgument, "write has an empty update")
		}
		p.name = op.Update.GetName()
		p.fields = op.Update.GetFields()
		if w.UpdateMask != nil {
			p.hasMask = true
			for _, fp := range w.UpdateMask.GetFieldPaths() {
				segs, err := parseFieldPath(fp)
				if err != nil {
					return nil, status.Errorf(codes.InvalidArgument, "update mask of %q: %v", p.name, err)
				}
				for _, s := range segs {
					if err := validateFieldName(s, false); err != nil {
						return nil, status.Errorf(codes.InvalidArgument, "update mask of %q: %v", p.name, err)
					}
				}
				p.mask = append(p.mask, segs)
			}
		}
		transforms = w.GetUpdateTransforms()
	case *pb.Write_Delete:
		p.name = op.Delete
		p.del = true
		if w.UpdateMask != nil || len(w.UpdateTransforms) > 0 {
			return nil, status.Error(codes.InvalidArgument, "a delete cannot have an update mask or transforms")
		}
	case *pb.Write_Transform:
		p.name = op.Transform.GetDocument()
		p.hasMask = true // a transform alone changes no other field
		transforms = op.Transform.GetFieldTransforms()
	default:
		return nil, status.Error(codes.InvalidArgument, "write has no operation")
	}
	segs, _, err := parseDocumentName(p.name, db)
	if err != nil {
		return nil, err
	}
	p.segs = segs
	p.key = encodePath(segs)
	if p.fields != nil {
		if err := normalizeFields(p.name, p.fields); err != nil {
			return nil, err
		}
	}
	for _, t := range transforms {
		segs, err := parseFieldPath(t.GetFieldPath())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "transform of %q: %v", p.name, err)
		}
		if err := checkTransform(t); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "transform of %q field %q: %v", p.name, t.GetFieldPath(), err)
		}
		p.transforms = append(p.transforms, preparedTransform{path: segs, t: t})
	}
	if p.pre != nil {
		if p.pre.ConditionType == nil {
			return nil, status.Errorf(codes.InvalidArgument, "precondition of %q has no condition", p.name)
		}
		if ut := p.pre.GetUpdateTime(); ut != nil {
			if err := ut.CheckValid(); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "precondition of %q: %v", p.name, err)
			}
		}
	}
	return p, nil
}

// checkTransform validates a field transform's argument.
func checkTransform(t *pb.DocumentTransform_FieldTransform) error {
	switch x := t.GetTransformType().(type) {
	case *pb.DocumentTransform_FieldTransform_SetToServerValue:
		if x.SetToServerValue != pb.DocumentTransform_FieldTransform_REQUEST_TIME {
			return fmt.Errorf("unsupported server value %v", x.SetToServerValue)
		}
	case *pb.DocumentTransform_FieldTransform_Increment:
		if rankOf(x.Increment) != rankNumber {
			return fmt.Errorf("increment needs an integer or a double")
		}
	case *pb.DocumentTransform_FieldTransform_Maximum:
		if rankOf(x.Maximum) != rankNumber {
			return fmt.Errorf("maximum needs an integer or a double")
		}
	case *pb.DocumentTransform_FieldTransform_Minimum:
		if rankOf(x.Minimum) != rankNumber {
			return fmt.Errorf("minimum needs an integer or a double")
		}
	case *pb.DocumentTransform_FieldTransform_AppendMissingElements:
		for _, v := range x.AppendMissingElements.GetValues() {
			if err := normalizeValue(v, 2, true); err != nil {
				return err
			}
		}
	case *pb.DocumentTransform_FieldTransform_RemoveAllFromArray:
		for _, v := range x.RemoveAllFromArray.GetValues() {
			if err := normalizeValue(v, 2, true); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("transform has no type")
	}
	return nil
}

// pendingDoc is a document's state while a commit is being applied.
type pendingDoc struct {
	segs    []string
	before  *pb.Document // latest stored state, nil if none
	cur     *pb.Document // state after the writes so far, nil if absent
	touched bool
}

// commitLocked applies writes atomically at time t. Callers hold db.mu for
// writing. On error nothing is applied.
func (db *database) commitLocked(writes []*preparedWrite, t int64) ([]*pb.WriteResult, error) {
	pending := map[string]*pendingDoc{}
	var order []string
	results := make([]*pb.WriteResult, len(writes))
	for i, w := range writes {
		pd := pending[w.key]
		if pd == nil {
			var latest *pb.Document
			if e := db.lookup(w.key); e != nil && len(e.versions) > 0 {
				latest = e.versions[len(e.versions)-1].doc
			}
			pd = &pendingDoc{segs: w.segs, before: latest, cur: latest}
			pending[w.key] = pd
			order = append(order, w.key)
		}
		res, err := applyWrite(pd, w, t)
		if err != nil {
			return nil, err
		}
		results[i] = res
	}
	var staged []stagedDoc
	for _, key := range order {
		pd := pending[key]
		if !pd.touched {
			continue
		}
		staged = append(staged, stagedDoc{segs: pd.segs, doc: pd.cur})
	}
	// Results of writes that left a document unchanged carry its previous
	// update time; the others the commit time.
	for i, w := range writes {
		pd := pending[w.key]
		if results[i] == nil || w.del {
			continue
		}
		if pd.touched && pd.cur != nil {
			results[i].UpdateTime = pd.cur.UpdateTime
		}
	}
	db.applyLocked(t, staged)
	return results, nil
}

// applyWrite applies one write to the pending state of its document.
func applyWrite(pd *pendingDoc, w *preparedWrite, t int64) (*pb.WriteResult, error) {
	if err := checkPrecondition(pd.cur, w); err != nil {
		return nil, err
	}
	res := &pb.WriteResult{}
	if w.del {
		if pd.cur != nil {
			pd.cur = nil
			pd.touched = pd.before != nil
		}
		return res, nil
	}
	var fields map[string]*pb.Value
	existed := pd.cur != nil
	if existed {
		fields = pd.cur.Fields
	}
	switch {
	case !w.hasMask:
		fields = w.fields
	default:
		for _, path := range w.mask {
			if v, ok := getField(w.fields, path); ok {
				fields = setField(fields, path, v)
			} else if fields != nil {
				fields, _ = deleteField(fields, path)
			}
		}
	}
	for _, tr := range w.transforms {
		var result *pb.Value
		var err error
		fields, result, err = applyTransform(fields, tr, t)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "transform of %q field %q: %v", w.name, tr.t.GetFieldPath(), err)
		}
		res.TransformResults = append(res.TransformResults, result)
	}
	if fields == nil {
		fields = map[string]*pb.Value{}
	}
	if err := checkDocumentSize(w.name, w.segs, fields); err != nil {
		return nil, err
	}
	if err := checkDepth(w.name, fields); err != nil {
		return nil, err
	}
	if existed && identicalFields(fields, pd.cur.Fields) {
		res.UpdateTime = pd.cur.UpdateTime
		return res, nil
	}
	doc := &pb.Document{Name: w.name, Fields: fields, UpdateTime: microsToProto(t)}
	if existed {
		doc.CreateTime = pd.cur.CreateTime
	} else {
		doc.CreateTime = doc.UpdateTime
	}
	pd.cur = doc
	pd.touched = true
	res.UpdateTime = doc.UpdateTime
	return res, nil
}

// checkDepth re-checks nesting after a masked update merged fields.
func checkDepth(name string, fields map[string]*pb.Value) error {
	for k, v := range fields {
		if d := nestingDepth(v); d > maxNestingDepth {
			return status.Errorf(codes.InvalidArgument, "document %q, field %q: value is nested %d levels deep, more than the maximum of %d", name, k, d, maxNestingDepth)
		}
	}
	return nil
}

// nestingDepth counts the levels of maps and arrays in v (0 for a scalar).
func nestingDepth(v *pb.Value) int {
	d := 0
	switch x := v.GetValueType().(type) {
	case *pb.Value_MapValue:
		for _, e := range x.MapValue.GetFields() {
			d = max(d, nestingDepth(e))
		}
		return d + 1
	case *pb.Value_ArrayValue:
		for _, e := range x.ArrayValue.GetValues() {
			d = max(d, nestingDepth(e))
		}
		return d + 1
	}
	return 0
}

// checkPrecondition checks a write's precondition against the document's
// current state.
func checkPrecondition(cur *pb.Document, w *preparedWrite) error {
	if w.pre == nil {
		return nil
	}
	switch c := w.pre.ConditionType.(type) {
	case *pb.Precondition_Exists:
		if c.Exists && cur == nil {
			return status.Errorf(codes.NotFound, "No document to update: %s", w.name)
		}
		if !c.Exists && cur != nil {
			return status.Errorf(codes.AlreadyExists, "Document already exists: %s", w.name)
		}
	case *pb.Precondition_UpdateTime:
		if cur == nil {
			return status.Errorf(codes.NotFound, "No document to update: %s", w.name)
		}
		if protoToMicros(cur.UpdateTime) != protoToMicros(c.UpdateTime) || c.UpdateTime.GetNanos()%1000 != 0 {
			return status.Errorf(codes.FailedPrecondition, "the stored version of %s (updated %s) does not match the required update_time %s",
				w.name, cur.UpdateTime.AsTime().Format("2006-01-02T15:04:05.000000Z07:00"), c.UpdateTime.AsTime().Format("2006-01-02T15:04:05.000000000Z07:00"))
		}
	}
	return nil
}

// applyTransform applies one field transform and returns the new fields and
// the transform result.
func applyTransform(fields map[string]*pb.Value, tr preparedTransform, t int64) (map[string]*pb.Value, *pb.Value, error) {
	cur, _ := getField(fields, tr.path)
	switch x := tr.t.GetTransformType().(type) {
	case *pb.DocumentTransform_FieldTransform_SetToServerValue:
		v := timestampValue(t)
		return setField(fields, tr.path, v), v, nil
	case *pb.DocumentTransform_FieldTransform_Increment:
		v := increment(cur, x.Increment)
		return setField(fields, tr.path, v), v, nil
	case *pb.DocumentTransform_FieldTransform_Maximum:
		v := extremum(cur, x.Maximum, 1)
		return setField(fields, tr.path, v), v, nil
	case *pb.DocumentTransform_FieldTransform_Minimum:
		v := extremum(cur, x.Minimum, -1)
		return setField(fields, tr.path, v), v, nil
	case *pb.DocumentTransform_FieldTransform_AppendMissingElements:
		var out []*pb.Value
		if a, ok := cur.GetValueType().(*pb.Value_ArrayValue); ok {
			out = append(out, a.ArrayValue.GetValues()...)
		}
		for _, e := range x.AppendMissingElements.GetValues() {
			if !containsValue(out, e) {
				out = append(out, e)
			}
		}
		return setField(fields, tr.path, arrayOf(out)), nullValue(), nil
	case *pb.DocumentTransform_FieldTransform_RemoveAllFromArray:
		var out []*pb.Value
		if a, ok := cur.GetValueType().(*pb.Value_ArrayValue); ok {
			for _, e := range a.ArrayValue.GetValues() {
				if !containsValue(x.RemoveAllFromArray.GetValues(), e) {
					out = append(out, e)
				}
			}
		}
		return setField(fields, tr.path, arrayOf(out)), nullValue(), nil
	}
	return nil, nil, fmt.Errorf("transform has no type")
}

func arrayOf(vs []*pb.Value) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_ArrayValue{ArrayValue: &pb.ArrayValue{Values: vs}}}
}

// containsValue uses equality of the array transforms: 3 == 3.0, NaN ==
// NaN, null == null.
func containsValue(vs []*pb.Value, v *pb.Value) bool {
	for _, e := range vs {
		if valuesEqual(e, v) {
			return true
		}
	}
	return false
}

// increment adds by to cur with Firestore's rules: a non-number cur is
// replaced by by; two integers add with saturation at the int64 bounds;
// otherwise the sum is a double.
func increment(cur, by *pb.Value) *pb.Value {
	if rankOf(cur) != rankNumber {
		return by
	}
	ci, cInt := cur.ValueType.(*pb.Value_IntegerValue)
	bi, bInt := by.ValueType.(*pb.Value_IntegerValue)
	if cInt && bInt {
		a, b := ci.IntegerValue, bi.IntegerValue
		s := a + b
		switch {
		case a > 0 && b > 0 && s < 0:
			s = math.MaxInt64
		case a < 0 && b < 0 && s >= 0:
			s = math.MinInt64
		}
		return intValue(s)
	}
	return doubleValue(asFloat(cur) + asFloat(by))
}

func asFloat(v *pb.Value) float64 {
	if i, ok := v.ValueType.(*pb.Value_IntegerValue); ok {
		return float64(i.IntegerValue)
	}
	return v.GetDoubleValue()
}

// extremum implements maximum (sign 1) and minimum (sign -1): a non-number
// cur is replaced; NaN wins; equal values keep the stored one.
func extremum(cur, arg *pb.Value, sign int) *pb.Value {
	if rankOf(cur) != rankNumber {
		return arg
	}
	if isNaN(cur) {
		return cur
	}
	if isNaN(arg) {
		return arg
	}
	if compareNumbers(arg, cur)*sign > 0 {
		return arg
	}
	return cur
}

func isNaN(v *pb.Value) bool {
	d, ok := v.ValueType.(*pb.Value_DoubleValue)
	return ok && math.IsNaN(d.DoubleValue)
}
