package firestoreemu

import (
	"strconv"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// aggregation is one compiled COUNT, SUM or AVG.
type aggregation struct {
	alias string
	kind  string // "count", "sum", "avg"
	upTo  int64  // count: 0 = no bound
	path  []string
}

func compileAggregations(in []*pb.StructuredAggregationQuery_Aggregation) ([]aggregation, error) {
	if len(in) == 0 {
		return nil, status.Error(codes.InvalidArgument, "an aggregation query needs at least one aggregation")
	}
	var out []aggregation
	seen := map[string]bool{}
	for i, a := range in {
		alias := a.GetAlias()
		if alias == "" {
			alias = "field_" + strconv.Itoa(i+1)
		}
		if seen[alias] {
			return nil, status.Errorf(codes.InvalidArgument, "duplicate aggregation alias %q", alias)
		}
		seen[alias] = true
		ag := aggregation{alias: alias}
		switch op := a.GetOperator().(type) {
		case *pb.StructuredAggregationQuery_Aggregation_Count_:
			ag.kind = "count"
			if op.Count.GetUpTo() != nil {
				ag.upTo = op.Count.GetUpTo().GetValue()
				if ag.upTo <= 0 {
					return nil, status.Error(codes.InvalidArgument, "count up_to must be positive")
				}
			}
		case *pb.StructuredAggregationQuery_Aggregation_Sum_:
			ag.kind = "sum"
			p, err := parseFieldPath(op.Sum.GetField().GetFieldPath())
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "sum: %v", err)
			}
			ag.path = p
		case *pb.StructuredAggregationQuery_Aggregation_Avg_:
			ag.kind = "avg"
			p, err := parseFieldPath(op.Avg.GetField().GetFieldPath())
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "avg: %v", err)
			}
			ag.path = p
		default:
			return nil, status.Error(codes.InvalidArgument, "aggregation has no operator")
		}
		out = append(out, ag)
	}
	return out, nil
}

// evalAggregations computes the aggregations over docs. SUM of integers is
// an integer unless it overflows (then a double); any double makes it a
// double; non-numbers are ignored. AVG is a double, null without numbers.
func evalAggregations(aggs []aggregation, docs []*pb.Document) map[string]*pb.Value {
	out := map[string]*pb.Value{}
	for _, a := range aggs {
		switch a.kind {
		case "count":
			n := int64(len(docs))
			if a.upTo > 0 && n > a.upTo {
				n = a.upTo
			}
			out[a.alias] = intValue(n)
		case "sum", "avg":
			var isum int64
			var fsum float64
			isDouble, n := false, 0
			for _, d := range docs {
				v, ok := getField(d.Fields, a.path)
				if !ok || rankOf(v) != rankNumber {
					continue
				}
				n++
				if i, ok := v.ValueType.(*pb.Value_IntegerValue); ok && !isDouble {
					s := isum + i.IntegerValue
					if (i.IntegerValue > 0 && s < isum) || (i.IntegerValue < 0 && s > isum) {
						isDouble = true
						fsum = float64(isum) + float64(i.IntegerValue)
						continue
					}
					isum = s
					continue
				}
				if !isDouble {
					isDouble = true
					fsum = float64(isum)
				}
				fsum += asFloat(v)
			}
			switch {
			case a.kind == "avg" && n == 0:
				out[a.alias] = nullValue()
			case a.kind == "avg" && isDouble:
				out[a.alias] = doubleValue(fsum / float64(n))
			case a.kind == "avg":
				out[a.alias] = doubleValue(float64(isum) / float64(n))
			case isDouble:
				out[a.alias] = doubleValue(fsum)
			default:
				out[a.alias] = intValue(isum)
			}
		}
	}
	return out
}
