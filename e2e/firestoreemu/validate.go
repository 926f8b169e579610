package firestoreemu

import (
	"fmt"
	"math"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Firestore's limits on what a document may hold.
const (
	maxDocumentBytes  = 1 << 20 // 1 MiB, storage size as computed by documentSize
	maxNestingDepth   = 20      // levels of maps/arrays below a top-level field
	maxFieldNameBytes = 1500
	maxWritesPerCall  = 500
)

// Timestamps Firestore accepts: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// normalizeFields validates the fields a client wants to store and
// normalizes them in place (timestamps are truncated to microseconds). name
// is the document name, used in error messages.
func normalizeFields(name string, fields map[string]*pb.Value) error {
	for k, v := range fields {
		if err := validateFieldName(k, false); err != nil {
			return status.Errorf(codes.InvalidArgument, "document %q: %v", name, err)
		}
		if err := normalizeValue(v, 1, false); err != nil {
			return status.Errorf(codes.InvalidArgument, "document %q, field %q: %v", name, formatFieldPath([]string{k}), err)
		}
	}
	return nil
}

// validateFieldName rejects names Firestore does not allow. inVector allows
// the "__type__" key of a vector map.
func validateFieldName(k string, inVector bool) error {
	switch {
	case len(k) > maxFieldNameBytes:
		return fmt.Errorf("field name of %d bytes exceeds the maximum of %d bytes", len(k), maxFieldNameBytes)
	case reservedID.MatchString(k) && !(inVector && k == vectorTypeKey):
		return fmt.Errorf("field name %q is reserved: names matching __.*__ are not allowed", k)
	}
	return nil
}

// normalizeValue validates v found depth levels below the document (1 for a
// top-level field) and truncates its timestamps to microseconds. inArray
// says v is an element of an array.
func normalizeValue(v *pb.Value, depth int, inArray bool) error {
	switch x := v.GetValueType().(type) {
	case nil:
		return fmt.Errorf("value has no type")
	case *pb.Value_TimestampValue:
		ts := x.TimestampValue
		if ts == nil || ts.Seconds < minTimestampSeconds || ts.Seconds > maxTimestampSeconds || ts.Nanos < 0 || ts.Nanos > 999999999 {
			return fmt.Errorf("timestamp %v is out of range (0001-01-01 to 9999-12-31)", ts)
		}
		ts.Nanos -= ts.Nanos % 1000
	case *pb.Value_GeoPointValue:
		g := x.GeoPointValue
		if g == nil || math.IsNaN(g.Latitude) || math.IsNaN(g.Longitude) || g.Latitude < -90 || g.Latitude > 90 || g.Longitude < -180 || g.Longitude > 180 {
			return fmt.Errorf("geo point %v is out of range (latitude within [-90, 90], longitude within [-180, 180])", g)
		}
	case *pb.Value_ReferenceValue:
		if _, _, err := parseDocumentName(x.ReferenceValue, dbID{}); err != nil {
			return fmt.Errorf("invalid reference value %q: want projects/{project_id}/databases/{database_id}/documents/{document_path}", x.ReferenceValue)
		}
	case *pb.Value_ArrayValue:
		if inArray {
			return fmt.Errorf("an array cannot directly contain another array")
		}
		if depth > maxNestingDepth {
			return fmt.Errorf("value is nested %d levels deep, more than the maximum of %d", depth, maxNestingDepth)
		}
		for _, e := range x.ArrayValue.GetValues() {
			if err := normalizeValue(e, depth+1, true); err != nil {
				return err
			}
		}
	case *pb.Value_MapValue:
		if depth > maxNestingDepth {
			return fmt.Errorf("value is nested %d levels deep, more than the maximum of %d", depth, maxNestingDepth)
		}
		vec := isVector(x.MapValue)
		for k, e := range x.MapValue.GetFields() {
			if err := validateFieldName(k, vec); err != nil {
				return err
			}
			if err := normalizeValue(e, depth+1, false); err != nil {
				return fmt.Errorf("in map key %q: %w", k, err)
			}
		}
		if vec {
			arr, ok := x.MapValue.Fields[vectorValueKey].GetValueType().(*pb.Value_ArrayValue)
			if !ok {
				return fmt.Errorf("a vector value needs an array of numbers in %q", vectorValueKey)
			}
			for _, e := range arr.ArrayValue.GetValues() {
				if rankOf(e) != rankNumber {
					return fmt.Errorf("a vector may hold only numbers")
				}
			}
		}
	}
	return nil
}

// documentNameSize is Firestore's storage size of a document name: each
// collection and document ID's UTF-8 length plus one (8 for a numeric
// document ID), plus 16.
func documentNameSize(segs []string) int {
	n := 16
	for i, s := range segs {
		if _, ok := numericID(s); ok && i%2 == 1 {
			n += 8
			continue
		}
		n += len(s) + 1
	}
	return n
}

// valueSize is Firestore's storage size of a value.
func valueSize(v *pb.Value) int {
	switch x := v.GetValueType().(type) {
	case *pb.Value_BooleanValue, *pb.Value_NullValue:
		return 1
	case *pb.Value_IntegerValue, *pb.Value_DoubleValue, *pb.Value_TimestampValue:
		return 8
	case *pb.Value_GeoPointValue:
		return 16
	case *pb.Value_StringValue:
		return len(x.StringValue) + 1
	case *pb.Value_BytesValue:
		return len(x.BytesValue)
	case *pb.Value_ReferenceValue:
		parts := strings.Split(x.ReferenceValue, "/")
		if len(parts) > 5 {
			return documentNameSize(parts[5:])
		}
		return 16
	case *pb.Value_ArrayValue:
		n := 0
		for _, e := range x.ArrayValue.GetValues() {
			n += valueSize(e)
		}
		return n
	case *pb.Value_MapValue:
		return fieldsSize(x.MapValue.GetFields())
	}
	return 0
}

func fieldsSize(fields map[string]*pb.Value) int {
	n := 0
	for k, e := range fields {
		n += len(k) + 1 + valueSize(e)
	}
	return n
}

// documentSize is Firestore's storage size of a document: the name's size,
// the fields' names and values, and 32 bytes.
func documentSize(segs []string, fields map[string]*pb.Value) int {
	return documentNameSize(segs) + fieldsSize(fields) + 32
}

// checkDocumentSize rejects documents larger than Firestore allows.
func checkDocumentSize(name string, segs []string, fields map[string]*pb.Value) error {
	if n := documentSize(segs, fields); n > maxDocumentBytes {
		return status.Errorf(codes.InvalidArgument,
			"Document %q cannot be written because its size (%d bytes) exceeds the maximum allowed size of %d bytes.",
			name, n, maxDocumentBytes)
	}
	return nil
}
