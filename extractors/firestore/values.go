package firestore

import (
	"fmt"
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// toRecord converts a Firestore document into a record keyed by its path
// relative to the database root.
func (e *Extractor) toRecord(d *pb.Document) (record.Record, error) {
	path := e.relative(d.Name)
	fields, err := e.fields(d.Fields)
	if err != nil {
		return record.Record{}, fmt.Errorf("converting document %s: %w", path, err)
	}
	r := record.Record{Kind: record.KindDocument, Key: path, Fields: fields, Cursor: path}
	if d.CreateTime != nil {
		r.CreateTime = d.CreateTime.AsTime().UTC()
	}
	if d.UpdateTime != nil {
		r.UpdateTime = d.UpdateTime.AsTime().UTC()
	}
	return r, nil
}

func (e *Extractor) fields(m map[string]*pb.Value) (map[string]record.Value, error) {
	out := make(map[string]record.Value, len(m))
	for k, v := range m {
		rv, err := e.Value(v)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		out[k] = rv
	}
	return out, nil
}

// Value converts one Firestore value. References into this database become
// paths relative to its root; references elsewhere keep their full name. A
// map of the form {__type__: "__vector__", value: [doubles]} is a vector.
func (e *Extractor) Value(v *pb.Value) (record.Value, error) {
	switch x := v.GetValueType().(type) {
	case nil, *pb.Value_NullValue:
		return record.Null(), nil
	case *pb.Value_BooleanValue:
		return record.Bool(x.BooleanValue), nil
	case *pb.Value_IntegerValue:
		return record.Int(x.IntegerValue), nil
	case *pb.Value_DoubleValue:
		return record.Double(x.DoubleValue), nil
	case *pb.Value_TimestampValue:
		return record.Timestamp(x.TimestampValue.AsTime()), nil
	case *pb.Value_StringValue:
		return record.String(x.StringValue), nil
	case *pb.Value_BytesValue:
		return record.Bytes(x.BytesValue), nil
	case *pb.Value_ReferenceValue:
		return record.Reference(strings.TrimPrefix(x.ReferenceValue, e.root+"/")), nil
	case *pb.Value_GeoPointValue:
		return record.Geo(x.GeoPointValue.GetLatitude(), x.GeoPointValue.GetLongitude()), nil
	case *pb.Value_ArrayValue:
		elems := make([]record.Value, len(x.ArrayValue.GetValues()))
		for i, ev := range x.ArrayValue.GetValues() {
			rv, err := e.Value(ev)
			if err != nil {
				return record.Value{}, fmt.Errorf("[%d]: %w", i, err)
			}
			elems[i] = rv
		}
		return record.Array(elems...), nil
	case *pb.Value_MapValue:
		f := x.MapValue.GetFields()
		if vec, ok := vector(f); ok {
			return record.Vector(vec), nil
		}
		m, err := e.fields(f)
		if err != nil {
			return record.Value{}, err
		}
		return record.Map(m), nil
	}
	return record.Value{}, fmt.Errorf("unsupported Firestore value type %T", v.GetValueType())
}

// vector recognises Firestore's vector encoding.
func vector(f map[string]*pb.Value) ([]float64, bool) {
	if len(f) != 2 || f["__type__"].GetStringValue() != "__vector__" {
		return nil, false
	}
	arr, ok := f["value"].GetValueType().(*pb.Value_ArrayValue)
	if !ok {
		return nil, false
	}
	out := make([]float64, len(arr.ArrayValue.GetValues()))
	for i, ev := range arr.ArrayValue.GetValues() {
		d, ok := ev.GetValueType().(*pb.Value_DoubleValue)
		if !ok {
			return nil, false
		}
		out[i] = d.DoubleValue
	}
	return out, true
}
