package dynamodb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Value converts one DynamoDB attribute value into a record value:
//
//	S → string, N → integer when whole and within 64 bits, else an exact
//	decimal (never a binary double), B → bytes, BOOL → boolean,
//	NULL → null, M → map, L → array,
//	SS / NS / BS → an array of the set's members, sorted (strings and
//	binaries by their bytes, numbers by value), since a set has no order.
func Value(av types.AttributeValue) (record.Value, error) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return record.String(v.Value), nil
	case *types.AttributeValueMemberN:
		return number(v.Value)
	case *types.AttributeValueMemberB:
		return record.Bytes(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return record.Bool(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return record.Null(), nil
	case *types.AttributeValueMemberM:
		m, err := Fields(v.Value)
		if err != nil {
			return record.Value{}, err
		}
		return record.Map(m), nil
	case *types.AttributeValueMemberL:
		out := make([]record.Value, len(v.Value))
		for i, e := range v.Value {
			x, err := Value(e)
			if err != nil {
				return record.Value{}, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = x
		}
		return record.Array(out...), nil
	case *types.AttributeValueMemberSS:
		ss := slices.Clone(v.Value)
		slices.Sort(ss)
		out := make([]record.Value, len(ss))
		for i, s := range ss {
			out[i] = record.String(s)
		}
		return record.Array(out...), nil
	case *types.AttributeValueMemberNS:
		// Each member's exact value is made once, not once per comparison.
		type member struct {
			v record.Value
			r *big.Rat
		}
		ms := make([]member, len(v.Value))
		for i, s := range v.Value {
			x, err := number(s)
			if err != nil {
				return record.Value{}, err
			}
			ms[i] = member{x, record.DecimalRat(x)}
		}
		slices.SortFunc(ms, func(a, b member) int { return a.r.Cmp(b.r) })
		out := make([]record.Value, len(ms))
		for i, m := range ms {
			out[i] = m.v
		}
		return record.Array(out...), nil
	case *types.AttributeValueMemberBS:
		bs := slices.Clone(v.Value)
		slices.SortFunc(bs, bytes.Compare)
		out := make([]record.Value, len(bs))
		for i, b := range bs {
			out[i] = record.Bytes(b)
		}
		return record.Array(out...), nil
	case nil:
		return record.Value{}, fmt.Errorf("missing attribute value")
	}
	return record.Value{}, fmt.Errorf("attribute value of unknown type %T", av)
}

func number(s string) (record.Value, error) {
	v, err := record.ParseDecimal(s)
	if err != nil {
		return record.Value{}, fmt.Errorf("number attribute: %w", err)
	}
	return v, nil
}

// Fields converts an item (or a map attribute) into record fields, names
// kept exactly.
func Fields(item map[string]types.AttributeValue) (map[string]record.Value, error) {
	out := make(map[string]record.Value, len(item))
	for name, av := range item {
		v, err := Value(av)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// keyText is the text of one key attribute inside a document ID: a string
// as it is, a number in canonical decimal, a binary in unpadded URL-safe
// base64. DynamoDB allows only these three types for keys.
func keyText(av types.AttributeValue) (string, error) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value, nil
	case *types.AttributeValueMemberN:
		return record.CanonicalDecimal(v.Value)
	case *types.AttributeValueMemberB:
		return base64.RawURLEncoding.EncodeToString(v.Value), nil
	case nil:
		return "", fmt.Errorf("the item has no value for the key attribute")
	}
	return "", fmt.Errorf("key attribute of type %T (DynamoDB keys are S, N or B)", av)
}

// escapeID makes a key attribute's text fit one document ID: "%" and "/"
// (a path separator) and "|" (between partition and sort key) are
// percent-encoded, nothing else is touched.
func escapeID(s string) string {
	if !strings.ContainsAny(s, "%/|") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '/', '|':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// encodeKey writes a primary key as a cursor stores it: DynamoDB JSON of the
// key attributes ({"pk":{"S":"a"},"sk":{"N":"1"}}), binaries in standard
// base64 as DynamoDB JSON writes them.
func encodeKey(key map[string]types.AttributeValue) (string, error) {
	m := make(map[string]map[string]string, len(key))
	for name, av := range key {
		switch v := av.(type) {
		case *types.AttributeValueMemberS:
			m[name] = map[string]string{"S": v.Value}
		case *types.AttributeValueMemberN:
			m[name] = map[string]string{"N": v.Value}
		case *types.AttributeValueMemberB:
			m[name] = map[string]string{"B": base64.StdEncoding.EncodeToString(v.Value)}
		default:
			return "", fmt.Errorf("key attribute %q of type %T", name, av)
		}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// decodeKey reads a cursor written by encodeKey back into a key.
func decodeKey(s string) (map[string]types.AttributeValue, error) {
	var m map[string]map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("cursor %q is not a DynamoDB key: %w", s, err)
	}
	out := make(map[string]types.AttributeValue, len(m))
	for name, tv := range m {
		switch {
		case len(tv) != 1:
			return nil, fmt.Errorf("cursor %q: attribute %q has %d types", s, name, len(tv))
		case tv["S"] != "":
			out[name] = &types.AttributeValueMemberS{Value: tv["S"]}
		case tv["N"] != "":
			out[name] = &types.AttributeValueMemberN{Value: tv["N"]}
		default:
			b, ok := tv["B"]
			if !ok {
				return nil, fmt.Errorf("cursor %q: attribute %q is not S, N or B", s, name)
			}
			raw, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				return nil, fmt.Errorf("cursor %q: attribute %q: %w", s, name, err)
			}
			out[name] = &types.AttributeValueMemberB{Value: raw}
		}
	}
	return out, nil
}
