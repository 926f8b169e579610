package firestoreemu

import (
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// filterNode is a compiled query filter.
type filterNode interface {
	match(d *pb.Document) bool
}

type compositeFilter struct {
	or   bool
	subs []filterNode
}

func (f *compositeFilter) match(d *pb.Document) bool {
	for _, s := range f.subs {
		if s.match(d) == f.or {
			return f.or
		}
	}
	return !f.or
}

// fieldFilter is a comparison of a field (or __name__) with a value.
type fieldFilter struct {
	path  []string // nil: __name__
	op    pb.StructuredQuery_FieldFilter_Operator
	value *pb.Value
}

// unaryFilter is IS_NULL, IS_NAN, IS_NOT_NULL or IS_NOT_NAN.
type unaryFilter struct {
	path []string
	op   pb.StructuredQuery_UnaryFilter_Operator
}

// fieldOf returns the value a filter or order looks at.
func fieldOf(d *pb.Document, path []string) (*pb.Value, bool) {
	if path == nil {
		return refValue(d.Name), true
	}
	return getField(d.Fields, path)
}

func (f *fieldFilter) match(d *pb.Document) bool {
	v, ok := fieldOf(d, f.path)
	if !ok {
		return false
	}
	switch f.op {
	case pb.StructuredQuery_FieldFilter_EQUAL:
		return rankOf(v) == rankOf(f.value) && valuesEqual(v, f.value)
	case pb.StructuredQuery_FieldFilter_NOT_EQUAL:
		return rankOf(v) != rankNull && !valuesEqual(v, f.value)
	case pb.StructuredQuery_FieldFilter_LESS_THAN:
		return rankOf(v) == rankOf(f.value) && compareValues(v, f.value) < 0
	case pb.StructuredQuery_FieldFilter_LESS_THAN_OR_EQUAL:
		return rankOf(v) == rankOf(f.value) && compareValues(v, f.value) <= 0
	case pb.StructuredQuery_FieldFilter_GREATER_THAN:
		return rankOf(v) == rankOf(f.value) && compareValues(v, f.value) > 0
	case pb.StructuredQuery_FieldFilter_GREATER_THAN_OR_EQUAL:
		return rankOf(v) == rankOf(f.value) && compareValues(v, f.value) >= 0
	case pb.StructuredQuery_FieldFilter_IN:
		return containsValue(f.value.GetArrayValue().GetValues(), v)
	case pb.StructuredQuery_FieldFilter_NOT_IN:
		return rankOf(v) != rankNull && !containsValue(f.value.GetArrayValue().GetValues(), v)
	case pb.StructuredQuery_FieldFilter_ARRAY_CONTAINS:
		arr, isArr := v.ValueType.(*pb.Value_ArrayValue)
		return isArr && containsValue(arr.ArrayValue.GetValues(), f.value)
	case pb.StructuredQuery_FieldFilter_ARRAY_CONTAINS_ANY:
		arr, isArr := v.ValueType.(*pb.Value_ArrayValue)
		if !isArr {
			return false
		}
		for _, e := range arr.ArrayValue.GetValues() {
			if containsValue(f.value.GetArrayValue().GetValues(), e) {
				return true
			}
		}
		return false
	}
	return false
}

func (f *unaryFilter) match(d *pb.Document) bool {
	v, ok := fieldOf(d, f.path)
	if !ok {
		return false
	}
	switch f.op {
	case pb.StructuredQuery_UnaryFilter_IS_NULL:
		return rankOf(v) == rankNull
	case pb.StructuredQuery_UnaryFilter_IS_NOT_NULL:
		return rankOf(v) != rankNull
	case pb.StructuredQuery_UnaryFilter_IS_NAN:
		return isNaN(v)
	case pb.StructuredQuery_UnaryFilter_IS_NOT_NAN:
		return rankOf(v) != rankNull && !isNaN(v)
	}
	return false
}

// compileFilter checks a filter and builds its evaluator.
func compileFilter(db dbID, f *pb.StructuredQuery_Filter) (filterNode, error) {
	switch x := f.GetFilterType().(type) {
	case *pb.StructuredQuery_Filter_CompositeFilter:
		cf := x.CompositeFilter
		out := &compositeFilter{}
		switch cf.GetOp() {
		case pb.StructuredQuery_CompositeFilter_AND:
		case pb.StructuredQuery_CompositeFilter_OR:
			out.or = true
		default:
			return nil, status.Errorf(codes.InvalidArgument, "unsupported composite filter operator %v", cf.GetOp())
		}
		if len(cf.Filters) == 0 {
			return nil, status.Error(codes.InvalidArgument, "a composite filter needs at least one filter")
		}
		for _, s := range cf.Filters {
			n, err := compileFilter(db, s)
			if err != nil {
				return nil, err
			}
			out.subs = append(out.subs, n)
		}
		return out, nil
	case *pb.StructuredQuery_Filter_FieldFilter:
		ff := x.FieldFilter
		path, err := filterPath(ff.GetField().GetFieldPath())
		if err != nil {
			return nil, err
		}
		if ff.Value == nil || ff.Value.ValueType == nil {
			return nil, status.Error(codes.InvalidArgument, "a field filter needs a value")
		}
		switch ff.Op {
		case pb.StructuredQuery_FieldFilter_IN, pb.StructuredQuery_FieldFilter_NOT_IN, pb.StructuredQuery_FieldFilter_ARRAY_CONTAINS_ANY:
			arr, ok := ff.Value.ValueType.(*pb.Value_ArrayValue)
			if !ok || len(arr.ArrayValue.GetValues()) == 0 {
				return nil, status.Errorf(codes.InvalidArgument, "'%s' filters need a non-empty array value", ff.Op)
			}
		case pb.StructuredQuery_FieldFilter_OPERATOR_UNSPECIFIED:
			return nil, status.Error(codes.InvalidArgument, "field filter has no operator")
		}
		if path == nil {
			if err := checkNameFilterValue(db, ff); err != nil {
				return nil, err
			}
		}
		return &fieldFilter{path: path, op: ff.Op, value: ff.Value}, nil
	case *pb.StructuredQuery_Filter_UnaryFilter:
		uf := x.UnaryFilter
		path, err := filterPath(uf.GetField().GetFieldPath())
		if err != nil {
			return nil, err
		}
		if uf.Op == pb.StructuredQuery_UnaryFilter_OPERATOR_UNSPECIFIED {
			return nil, status.Error(codes.InvalidArgument, "unary filter has no operator")
		}
		return &unaryFilter{path: path, op: uf.Op}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "filter has no type")
}

// filterPath parses a filter's field path; nil means __name__.
func filterPath(fp string) ([]string, error) {
	p, err := parseFieldPath(fp)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "filter: %v", err)
	}
	if len(p) == 1 && p[0] == nameField {
		return nil, nil
	}
	return p, nil
}

// checkNameFilterValue requires references for filters on __name__.
func checkNameFilterValue(db dbID, ff *pb.StructuredQuery_FieldFilter) error {
	vals := []*pb.Value{ff.Value}
	if arr, ok := ff.Value.ValueType.(*pb.Value_ArrayValue); ok {
		vals = arr.ArrayValue.GetValues()
	}
	for _, v := range vals {
		ref, ok := v.ValueType.(*pb.Value_ReferenceValue)
		if !ok {
			return status.Errorf(codes.InvalidArgument, "__name__ filter value must be a reference, got %v", v)
		}
		if _, _, err := parseDocumentName(ref.ReferenceValue, db); err != nil {
			return err
		}
	}
	return nil
}

// isInequality reports operators that need the field ordered.
func isInequality(f filterNode) ([]string, bool) {
	switch x := f.(type) {
	case *fieldFilter:
		switch x.op {
		case pb.StructuredQuery_FieldFilter_LESS_THAN, pb.StructuredQuery_FieldFilter_LESS_THAN_OR_EQUAL,
			pb.StructuredQuery_FieldFilter_GREATER_THAN, pb.StructuredQuery_FieldFilter_GREATER_THAN_OR_EQUAL,
			pb.StructuredQuery_FieldFilter_NOT_EQUAL, pb.StructuredQuery_FieldFilter_NOT_IN:
			return x.path, true
		}
	case *unaryFilter:
		switch x.op {
		case pb.StructuredQuery_UnaryFilter_IS_NOT_NULL, pb.StructuredQuery_UnaryFilter_IS_NOT_NAN:
			return x.path, true
		}
	}
	return nil, false
}

// collectInequalities appends the paths of inequality filters (nil path:
// __name__, as []string{"__name__"}), each once.
func collectInequalities(f filterNode, out *[][]string) {
	if f == nil {
		return
	}
	if c, ok := f.(*compositeFilter); ok {
		for _, s := range c.subs {
			collectInequalities(s, out)
		}
		return
	}
	p, ok := isInequality(f)
	if !ok {
		return
	}
	if p == nil {
		p = []string{nameField}
	}
	for _, q := range *out {
		if pathHasPrefix(q, p) && len(q) == len(p) {
			return
		}
	}
	*out = append(*out, p)
}
